"""One host's recovery: a state machine checkpointed at every step.

``confirmed -> fencing -> isolating -> evacuating -> notifying -> done``,
or ``held`` (a gate said no, or fencing failed: retried with backoff) and
``failed``. Every change of step is allowed by the table in
``engine/transitions.py`` and is one fenced write; every step is
idempotent against ground truth, so a new leader re-runs the step it finds
in the record and nothing that already happened happens again.

Admin alerts go through the record's *outbox*: an alert is queued in the
same checkpoint as the change that caused it and removed once delivered,
so a takeover delivers what its predecessor could not.
"""
from __future__ import annotations

import dataclasses
import threading
import time
import typing as t

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.engine import fencing
from freezer_dr.engine import gates
from freezer_dr.engine import outbox
from freezer_dr.engine import selection
from freezer_dr.engine import transitions
from freezer_dr.engine.evacuation import Evacuation
from freezer_dr.engine.recovery_context import RecoveryContext
from freezer_dr.fencers.context import WaitingGuard
from freezer_dr.model import FenceResult
from freezer_dr.model import InstanceState
from freezer_dr.model import PowerState
from freezer_dr.model import RecoveryRecord
from freezer_dr.model import Step
from freezer_dr.model import now

LOG = logging.getLogger(__name__)

#: (kind, summary): an admin alert queued with a transition
Alert = tuple[str, str]


class RecoveryRunner:
    """Drives one record forward until it is terminal or has to wait."""

    def __init__(self, ctx: RecoveryContext, record: RecoveryRecord) -> None:
        self.ctx = ctx
        self.record = record
        self._lock = threading.Lock()

    # -- plumbing --------------------------------------------------------
    def guard(self, need: float) -> None:
        """Raise unless the lease outlives a side effect of ``need`` s.

        A side effect that could never fit in the lease is a
        configuration error, not a lost lease: it is raised as such, so
        it is counted and alerted instead of re-dispatched silently.
        """
        lease = self.ctx.lease
        if need + lease.margin >= lease.ttl:
            raise exceptions.GuardUnsatisfiable(
                f'a side effect of {need:g} s can never start: the lease '
                f'lasts {lease.ttl:g} s with a {lease.margin:g} s margin')
        try:
            lease.ensure_waiting(need, self.ctx.stop)
        except exceptions.LeadershipLost:
            if self.ctx.stop.is_set() or not getattr(lease, 'is_leader',
                                                     False):
                raise
            raise exceptions.GuardUnsatisfiable(
                f'the lease never had {need:g} s to spare for a side '
                f'effect (keepalives too slow for the timeout?)') from None

    def guard_bmc(self) -> None:
        """Right before a power command: the gates and the lease."""
        self._check_gates()
        self.guard(self.ctx.settings.bmc_call_time)

    def guard_bmc_now(self) -> None:
        """:meth:`guard_bmc` without waiting for a keepalive (a late one
        refuses the command): for checks made inside a BMC library's
        lock, where waiting would stall every BMC call of the process."""
        self._check_gates()
        if self.ctx.stop.is_set():
            raise exceptions.LeadershipLost('stopped')
        self.ctx.lease.ensure(need=self.ctx.settings.bmc_call_time)

    def _check_gates(self) -> None:
        hold = self.ctx.hold_reason(self.record.host)
        if hold:
            raise exceptions.GateClosed(hold)

    def guard_nova(self) -> None:
        self.guard(self.ctx.settings.nova_call_time)

    def guard_notify(self) -> None:
        self.guard(self.ctx.settings.notify_call_time)

    def save(self) -> None:
        """Checkpoint the record (one fenced write) while our term lasts.

        A runner of an ended term never writes again, even when this
        replica leads again at the same epoch: its copy may be stale.
        """
        with self._lock:
            if self.ctx.stop.is_set():
                raise exceptions.LeadershipLost('recovery stopped')
            self.record.updated_at = now()
            self.ctx.store.put_recovery(self.record)

    def transition(self, step: Step, condition: str, note: str = '',
                   alert: Alert | None = None, **changes: t.Any) -> None:
        """Change step (as the table allows) in one checkpoint.

        ``alert`` queues an admin alert in the same checkpoint.
        """
        transitions.check(self.record.step, step, condition)
        for name, value in changes.items():
            setattr(self.record, name, value)
        if alert is not None:
            self._queue(*alert)
        self.record.step = step
        self.record.steps.append({'step': step.value, 'at': now(),
                                  'note': note, 'condition': condition})
        self.save()
        LOG.info('recovery %s of host %s: %s on %s%s', self.record.id,
                 self.record.host, step.value, condition,
                 f' ({note})' if note else '')

    # -- admin alerts (the outbox) ----------------------------------------
    def _queue(self, kind: str, summary: str) -> None:
        outbox.queue(self.record, kind, summary)

    def queue_alert(self, kind: str, summary: str) -> None:
        """Queue an admin alert (one checkpoint), then try to send it."""
        self._queue(kind, summary)
        self.save()
        self.flush_alerts(quick=True)

    def flush_alerts(self, quick: bool = True) -> None:
        """Deliver what the outbox holds (see engine/outbox.py)."""
        outbox.flush(self, quick)

    # -- the machine -----------------------------------------------------
    def run(self) -> None:
        """Advance until terminal, held, or stopped (LeadershipLost)."""
        handlers = {
            Step.CONFIRMED: self._gate,
            Step.HELD: self._gate,
            Step.FENCING: self._fence,
            Step.ISOLATING: self._isolate,
            Step.EVACUATING: self._evacuate,
            Step.NOTIFYING: self._notify,
        }
        if self.record.step in (Step.ISOLATING, Step.EVACUATING):
            self._recheck_power()
        self.flush_alerts(quick=True)
        while not self.record.terminal:
            if not handlers[self.record.step]():
                self.flush_alerts(quick=True)
                return
        self.ctx.store.finish_recovery(self.record)
        LOG.info('recovery %s of host %s finished: %s (%s)', self.record.id,
                 self.record.host, self.record.step.value, self.record.reason)

    def _recheck_power(self) -> None:
        """Resuming past fencing: is the host still off? (S1 on takeover)

        Only a BMC that answers "on" undoes the fence evidence; one that
        cannot be read leaves the verified power-off of this recovery
        standing (a dead BMC is no sign of a running host). A host found
        on after some of its instances were evacuated may run them twice:
        admins are alerted whatever the gates say.
        """
        deadline = time.monotonic() + self.ctx.settings.fence_level_timeout
        state = fencing.read_power(self.ctx.fencers(self.record.host),
                                   deadline)
        if state != PowerState.ON:
            return
        moved = [i for i in self.record.instances if i.state in (
            InstanceState.REQUESTED, InstanceState.DONE)]
        summary = 'read ON by its BMC after it was fenced: fencing it again'
        if moved:
            summary += (f'; {len(moved)} of its instances were already '
                        f'evacuated or requested and may be running twice')
        self.transition(Step.FENCING, 'power_on_seen', 'resumed: host found '
                        'powered on again', alert=('power_on', summary),
                        power_on_seen_at=now(), operator_confirmation=None)

    def _gate(self) -> bool:
        record = self.record
        if record.step == Step.HELD and now() < record.next_attempt_at:
            return False
        if self.ctx.host_down(record.host) is False:
            why = ('host came back up before it was fenced: nothing done'
                   if not record.fence_attempts else
                   'host came back up before a power-off was verified: '
                   'no instance moved (a power command may have been sent)')
            self.transition(Step.NOTIFYING, 'host_back', why, reason=why)
            return True
        reason = self.ctx.hold_reason(record.host)
        if reason:
            if record.step != Step.HELD or record.reason != reason:
                self.transition(Step.HELD, 'gate_closed', reason,
                                reason=reason)
            return False
        self.transition(Step.FENCING, 'gates_open', reason=None)
        return True

    def _fence(self) -> bool:
        record = self.record
        hold = self.ctx.hold_reason(record.host)
        if hold:                  # resumed at fencing while a gate is shut
            self.transition(Step.HELD, 'gate_closed', hold, reason=hold)
            return False
        confirmed_at = self._take_confirmation()
        try:
            result = self._fence_attempt(confirmed_at)
        except exceptions.GateClosed as closed:   # closed mid-attempt
            self.transition(Step.HELD, 'gate_closed', str(closed),
                            reason=str(closed))
            return False
        evidence = dataclasses.asdict(result)
        on_seen = result.power_on_seen_at or record.power_on_seen_at
        if result.success:
            self.transition(Step.ISOLATING, 'fence_verified',
                            f'{result.level}: power {result.power_state}',
                            fence=evidence, power_on_seen_at=on_seen)
            return True
        attempts = record.fence_attempts + 1
        wait = gates.backoff(attempts, self.ctx.settings.fence_retry_initial,
                             self.ctx.settings.fence_retry_max)
        reason = f'fencing failed: {result.detail}'
        # A failed attempt drops the operator's confirmation: one that was
        # refused (the host read ON) must never count later (S1).
        self.transition(Step.HELD, 'fence_failed',
                        f'{reason}; retry in {wait:.0f} s',
                        alert=('fence_failed', reason), fence=evidence,
                        fence_attempts=attempts, power_on_seen_at=on_seen,
                        next_attempt_at=now() + wait, reason=reason,
                        operator_confirmation=None)
        return False

    def _take_confirmation(self) -> float | None:
        """The operator's confirmation, used up by this attempt.

        It leaves the record (one checkpoint) before the attempt starts,
        so an attempt cut short (a lost lease, a crash) leaves none behind
        for a later attempt that may never learn what this one read; and
        it is refused when a readiness check read the host ON after the
        operator gave it (S1).
        """
        record = self.record
        accepted = record.operator_confirmation
        if not accepted:
            return None
        record.operator_confirmation = None
        if self.ctx.power_on_since(record.host, accepted.get('revision', 0)):
            self.queue_alert('confirmation_refused', 'a BMC read the host '
                             'ON after the operator confirmed it off: '
                             'confirmation refused; check the host, then '
                             'confirm again')
            return None
        self.save()
        return accepted.get('at')

    def _fence_attempt(self, confirmed_at: float | None) -> FenceResult:
        """One walk over the host's levels; any error fails it closed."""
        host = self.record.host
        started = now()
        if confirmed_at is not None:
            self.ctx.confirmations[host] = confirmed_at
        try:
            return fencing.fence_node(
                host, self.ctx.fencers(host),
                self.ctx.settings.fence_level_timeout,
                guard=WaitingGuard(self.guard_bmc, self.guard_bmc_now),
                distrusted=self.ctx.distrusted(host))
        except (exceptions.LeadershipLost, exceptions.GateClosed):
            raise
        except Exception as error:   # a driver bug or a config error
            LOG.exception('recovery %s of host %s: fencing error',
                          self.record.id, host)
            return FenceResult(
                host=host, success=False,
                detail=f'fencing error: {type(error).__name__}: {error}',
                started_at=started, finished_at=now())
        finally:
            self.ctx.confirmations.pop(host, None)

    def _isolate(self) -> bool:
        record = self.record
        fence = record.fence or {}
        if not (fence.get('success') and fence.get('power_state') == 'off'):
            self.transition(Step.FENCING, 'no_fence_evidence',
                            'no verified power-off recorded: fencing first')
            return True
        self.ctx.evacuator.isolate(
            record.host, f'freezer-dr recovery {record.id}: host failed '
                         f'and was fenced', guard=self.guard_nova)
        if not record.instances:
            s = self.ctx.settings
            record.instances = selection.records(
                self.ctx.evacuator.instances(record.host), s.selection,
                s.ha_metadata_key, s.ha_tag, s.include_error)
        self.transition(Step.EVACUATING, 'isolated',
                        f'{len(record.instances)} instance(s) selected')
        return True

    def _evacuate(self) -> bool:
        record = self.record
        Evacuation(record.host, record.instances, self.ctx.evacuator,
                   self.ctx.settings.evacuation, self.save, self.guard_nova,
                   self.ctx.stop).run()
        failed = [i for i in record.instances
                  if i.state == InstanceState.FAILED]
        done = [i for i in record.instances if i.state == InstanceState.DONE]
        reason = f'{len(done)} evacuated'
        if failed:
            reason += f', {len(failed)} failed'
        self.transition(Step.NOTIFYING, 'evacuated', reason, reason=reason,
                        failed_step=Step.EVACUATING if failed else None)
        return True

    def _notify(self) -> bool:
        """Tell people; an undeliverable alert never keeps the users'
        mail from going (each is retried on its own until given up)."""
        errors = []
        for send in (self._tell_outcome,
                     lambda: self.flush_alerts(quick=False)):
            try:
                send()
            except exceptions.NotifyFailed as error:
                errors.append(str(error))
        if errors:
            raise exceptions.NotifyFailed('; '.join(errors))
        final = (Step.FAILED if self.record.failed_step
                 or self.record.cancelled else Step.DONE)
        self.transition(final, 'notified', self.record.reason or '',
                        finished_at=now())
        return True

    def _tell_outcome(self) -> None:
        record = self.record
        if record.cancelled:        # nothing was done: admins only
            self.ctx.notification.alert(self, 'cancelled',
                                        record.reason or 'cancelled')
        elif record.reopened:       # users had their mail: admins only
            self.ctx.notification.alert(
                self, 'retry', f'retried recovery ended: {record.reason}',
                key=f'retry-{record.reopened}')
        else:
            self.ctx.notification.recovered(self)
