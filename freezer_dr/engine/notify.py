"""Deliver notifications exactly once per key, with retries.

A key is recorded (in the recovery record, or in the store's ``alerts``
map for cluster-wide alerts) only after its send succeeded, and a recorded
key is never sent again, whoever leads. Every notifier splits an event into
``deliveries(event, key)`` (one mail per user, say); each delivery has a
sub-key of its own, so a retry after a partial failure does not repeat the
deliveries that went through.
"""
from __future__ import annotations

import threading
import typing as t

import tenacity
from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.model import now
from freezer_dr.notifiers.base import Event
from freezer_dr.notifiers.base import Notifier

LOG = logging.getLogger(__name__)

ALERTS_KEY = 'alerts'
#: one cluster alert at a time per process: the sent-keys map in the
#: store is read, changed and written back (one leader writes it)
_CLUSTER_ALERTS = threading.Lock()
#: sent cluster-alert keys remembered (older episodes are long over)
ALERTS_KEPT = 200


class Notification:
    """Sends events through every configured notifier."""

    def __init__(self, notifiers: dict[str, Notifier], attempts: int,
                 stop: threading.Event, retry_delay: float = 1.0) -> None:
        self.notifiers = notifiers
        self.attempts = attempts
        self.stop = stop
        self.retry_delay = retry_delay

    # -- per recovery ----------------------------------------------------
    def recovered(self, runner) -> None:
        """The recovery of ``runner`` ended: tell users and admins.

        Raises NotifyFailed while some delivery is still missing (the
        runner retries the step later; what went through is not resent).
        """
        record = runner.record
        event = Event(kind='recovered', host=record.host,
                      summary=f'host {record.host}: {record.reason}',
                      recovery=record.to_dict())
        self._require(self._deliver(
            event, f'{record.id}:recovered', record.notifications,
            runner.guard_notify, runner.save), record.id)

    def alert(self, runner, kind: str, summary: str, key: str | None = None,
              rounds: int | None = None) -> None:
        """Admins only: something about this recovery needs a human.

        ``key`` (default: ``kind``) makes it unique within the recovery;
        ``rounds`` bounds the delivery rounds (default: all attempts).
        """
        record = runner.record
        event = Event(kind=kind, host=record.host,
                      summary=f'host {record.host}: {summary}',
                      recovery=record.to_dict())
        self._require(self._deliver(
            event, f'{record.id}:{key or kind}', record.notifications,
            runner.guard_notify, runner.save, rounds), record.id)

    @staticmethod
    def _require(delivered: bool, recovery_id: str) -> None:
        if not delivered:
            raise exceptions.NotifyFailed(
                f'recovery {recovery_id}: notifications not all delivered')

    # -- cluster-wide ----------------------------------------------------
    def cluster_alert(self, store, lease, guard_time: float, kind: str,
                      episode: str, summary: str,
                      details: dict | None = None,
                      rounds: int | None = None) -> bool:
        """Storm, blindness: one alert per episode, whoever leads.

        Returns whether everything was delivered; what is not is tried
        again on the next call with the same kind and episode.
        """
        with _CLUSTER_ALERTS:
            return self._cluster_alert(store, lease, guard_time, kind,
                                       episode, summary, details, rounds)

    def _cluster_alert(self, store, lease, guard_time: float, kind: str,
                       episode: str, summary: str, details: dict | None,
                       rounds: int | None) -> bool:
        sent = (store.get(ALERTS_KEY) or {}).get('sent', {})

        def guard() -> None:
            lease.ensure_waiting(guard_time, self.stop)

        def save() -> None:
            recent = sorted(sent.items(), key=lambda kv: kv[1])[-ALERTS_KEPT:]
            store.put_fenced(ALERTS_KEY, {'sent': dict(recent)})

        event = Event(kind=kind, summary=summary, details=details or {})
        return self._deliver(event, f'{kind}:{episode}', sent, guard, save,
                             rounds)

    # -- delivery --------------------------------------------------------
    def _deliver(self, event: Event, key: str, sent: dict[str, float],
                 guard: t.Callable[[], None],
                 save: t.Callable[[], None],
                 rounds: int | None = None) -> bool:
        """Whether every notifier delivered everything."""
        results = [self._rounds(notifier, event, f'{key}:{name}', sent,
                                guard, save, rounds or self.attempts)
                   for name, notifier in self.notifiers.items()]
        return all(results)

    def _rounds(self, notifier: Notifier, event: Event, key: str,
                sent: dict[str, float], guard: t.Callable[[], None],
                save: t.Callable[[], None], rounds: int) -> bool:
        """Deliver what is not yet sent; retry the rest in new rounds.

        Round n+1 starts ``retry_delay * n`` s after round n failed; the
        stop event set during that wait raises LeadershipLost.
        """
        def failed_round(state: tenacity.RetryCallState) -> None:
            errors = state.outcome.result()
            LOG.warning('notification %s: round %d of %d: %d failed: %s',
                        key, state.attempt_number, rounds, len(errors),
                        errors[0])

        def given_up(state: tenacity.RetryCallState) -> list[Exception]:
            LOG.error('notification %s: not fully delivered after %d '
                      'rounds', key, rounds)
            return state.outcome.result()

        errors = tenacity.Retrying(
            retry=tenacity.retry_if_result(bool),
            stop=tenacity.stop_after_attempt(rounds),
            wait=tenacity.wait_incrementing(self.retry_delay,
                                            self.retry_delay),
            sleep=self._wait_unless_stopped, after=failed_round,
            retry_error_callback=given_up,
        )(self._round, notifier, event, key, sent, guard, save)
        return not errors

    def _wait_unless_stopped(self, seconds: float) -> None:
        if self.stop.wait(seconds):
            raise exceptions.LeadershipLost('recovery stopped')

    @staticmethod
    def _round(notifier: Notifier, event: Event, key: str,
               sent: dict[str, float], guard: t.Callable[[], None],
               save: t.Callable[[], None]) -> list[Exception]:
        """One round: the errors of the deliveries that did not go out.

        Each round asks the notifier afresh for its deliveries, so a
        delivery that could not even be composed (the user directory was
        down) is replaced by the real ones once it answers. The lease is
        checked before each delivery.
        """
        errors: list[Exception] = []
        guard()
        try:
            parts = notifier.deliveries(event, key)
        except exceptions.LeadershipLost:
            raise
        except Exception as error:     # NotifyFailed, or a driver bug
            _log_unexpected(key, error)
            return [error]
        for delivery in parts:
            if delivery.subkey in sent:
                continue
            guard()
            try:
                delivery.deliver()
            except exceptions.LeadershipLost:
                raise
            except Exception as error:  # one bad delivery: not all
                _log_unexpected(key, error)
                errors.append(error)
                continue
            sent[delivery.subkey] = now()
            save()
        return errors


def _log_unexpected(key: str, error: Exception) -> None:
    """A notifier's own failure is logged quietly; anything else is a bug
    worth its traceback (it is still only an undelivered message)."""
    if isinstance(error, exceptions.NotifyFailed):
        return
    LOG.error('notification %s: notifier error', key, exc_info=error)
