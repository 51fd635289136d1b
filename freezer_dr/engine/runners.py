"""The recovery runner threads of one leader: start, back off, give up.

One thread per live recovery drives it with a :class:`RecoveryRunner`.
A runner that raises is started again after a backoff; one whose step
keeps failing *without progress* is given up on: isolating or evacuating
end the recovery (failed, people told), notifying ends it with what was
delivered, and the steps before fencing keep retrying with one admin alert
(nothing can be failed there without a human: the host is not fenced).
"""
from __future__ import annotations

import dataclasses
import threading
import typing as t

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.engine import gates
from freezer_dr.engine.recovery import RecoveryRunner
from freezer_dr.engine.recovery_context import RecoveryContext
from freezer_dr.model import RecoveryRecord
from freezer_dr.model import Step
from freezer_dr.model import now

LOG = logging.getLogger(__name__)

#: consecutive errors of one step, without progress, before the recovery
#: gives up on it: with the backoff below, two minutes of a cloud that
#: keeps failing (a little more: each error may end a request the Nova
#: evacuator sent three times, see ``cloud.retry_server_errors``)
MAX_STEP_ERRORS = 8
#: seconds before a runner that hit an error is started again (doubling).
#: Short, and capped low: past the fence the host's instances are down,
#: and one 500 among good answers must cost seconds, not minutes.
ERROR_RETRY = 2.0
ERROR_RETRY_MAX = 30.0
#: steps where nothing irreversible happened yet: never given up on
BEFORE_FENCE = (Step.CONFIRMED, Step.HELD, Step.FENCING)


@dataclasses.dataclass(frozen=True)
class StepErrors:
    """Consecutive errors of one recovery at the same point of progress."""
    progress: tuple
    count: int
    retry_at: float
    alerted: bool = False


def progress(record: RecoveryRecord) -> tuple:
    """What changes whenever a recovery moves (a step, an instance)."""
    return (record.step, len(record.steps),
            tuple(i.state for i in record.instances))


class RunnerPool:
    """Starts and follows the runner threads of one leader."""

    def __init__(self, on_finished: t.Callable[[RecoveryRecord], None]
                 = lambda record: None) -> None:
        self._runners: dict[str, threading.Thread] = {}
        self._errors: dict[str, StepErrors] = {}
        self._on_finished = on_finished

    def owned(self) -> set[str]:
        """Hosts whose runner is alive: it owns their record right now."""
        return {h for h, th in self._runners.items() if th.is_alive()}

    def running(self) -> bool:
        """Whether any runner thread (of any term) is alive."""
        return bool(self.owned())

    def due(self, record: RecoveryRecord) -> bool:
        """Whether ``record`` should get a runner now."""
        if record.host in self.owned():
            return False
        if record.step == Step.HELD and record.next_attempt_at > now():
            return False
        error = self._errors.get(record.host)
        return error is None or error.retry_at <= now()

    def start(self, ctx: RecoveryContext, record: RecoveryRecord) -> None:
        runner = RecoveryRunner(ctx, record)
        thread = threading.Thread(target=self._run, args=(runner,),
                                  name=f'recovery-{record.host}',
                                  daemon=True)
        self._runners[record.host] = thread
        thread.start()

    def new_term(self) -> None:
        """After a lost lease: forget errors, keep threads still alive.

        Runners of the old term stop at their next step (their stop event
        is set, so they can neither act nor write); until their threads
        end they stay here, so no second runner starts for their host.
        """
        self._runners = {h: th for h, th in self._runners.items()
                         if th.is_alive()}
        self._errors = {}

    # -- one runner thread ----------------------------------------------
    def _run(self, runner: RecoveryRunner) -> None:
        record = runner.record
        try:
            runner.run()
            self._errors.pop(record.host, None)
            if record.terminal:
                self._on_finished(record)
        except exceptions.LeadershipLost as error:
            LOG.warning('recovery %s of host %s stopped: %s', record.id,
                        record.host, error)
        except exceptions.FreezerDRError as error:
            self._step_error(runner, error)
        except Exception as error:   # a bug: say so loudly, keep the host
            LOG.exception('recovery %s of host %s: unexpected error',
                          record.id, record.host)
            self._step_error(runner, error)

    def _step_error(self, runner: RecoveryRunner, error: Exception) -> None:
        record = runner.record
        if runner.ctx.stop.is_set():
            return                   # its term is over: not ours to judge
        point = progress(record)
        last = self._errors.get(record.host)
        same = last is not None and last.progress == point
        count = last.count + 1 if same else 1
        alerted = same and last.alerted
        LOG.error('recovery %s of host %s: step %s failed (%d of %d): %s',
                  record.id, record.host, record.step.value, count,
                  MAX_STEP_ERRORS, error)
        retry_at = now() + gates.backoff(count, ERROR_RETRY,
                                         ERROR_RETRY_MAX)
        self._errors[record.host] = StepErrors(point, count, retry_at,
                                               alerted)
        if count < MAX_STEP_ERRORS or alerted:
            return
        # from here on, every further error tries again to give up or to
        # alert, until that itself went through
        try:
            if record.step in BEFORE_FENCE:
                runner.queue_alert('stuck', f'step {record.step.value} '
                                   f'failed {count} times: {error}; still '
                                   f'retrying, nothing fenced yet')
                self._errors[record.host] = StepErrors(point, count,
                                                       retry_at, True)
            else:
                self._give_up(runner, error)
        except Exception as again:    # the store or the mailer too
            LOG.error('recovery %s: could not record the failure: %s',
                      record.id, again)

    def _give_up(self, runner: RecoveryRunner, error: Exception) -> None:
        """End a recovery whose step keeps failing; tell people."""
        record = runner.record
        if record.step == Step.NOTIFYING:
            final = (Step.FAILED if record.failed_step or record.cancelled
                     else Step.DONE)
            runner.transition(final, 'notify_gave_up',
                              f'notifications not delivered: {error}',
                              finished_at=now(),
                              reason=f'{record.reason}; notifications '
                                     f'not delivered: {error}')
        else:
            failed_step = record.step
            runner.transition(Step.NOTIFYING, 'step_gave_up',
                              f'{failed_step.value}: {error}',
                              failed_step=failed_step,
                              reason=f'{failed_step.value} failed: {error}')
        runner.run()
        self._errors.pop(record.host, None)
        if record.terminal:
            self._on_finished(record)
