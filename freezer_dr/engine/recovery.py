"""One host's recovery: a state machine checkpointed at every step.

``confirmed -> fencing -> isolating -> evacuating -> notifying -> done``,
or ``held`` (a gate said no, or fencing failed: retried with backoff) and
``failed``. Every transition is one fenced write, and every step is
idempotent against ground truth, so a new leader re-runs the step it finds
in the record and nothing that already happened happens again.
"""
from __future__ import annotations

import dataclasses
import threading
import time
import typing as t

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.engine import gates
from freezer_dr.engine.evacuation import Evacuation
from freezer_dr.engine.evacuation import EvacuationSettings
from freezer_dr.engine.model import InstanceRecord
from freezer_dr.engine.model import InstanceState
from freezer_dr.engine.model import PowerState
from freezer_dr.engine.model import RecoveryRecord
from freezer_dr.engine.model import Step
from freezer_dr.engine.model import now
from freezer_dr.engine.notify import Notification
from freezer_dr.evacuators import selection
from freezer_dr.fencers import levels as fence_levels

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RecoverySettings:
    """Everything a recovery needs to know from the configuration."""
    fence_timeout: float = 30.0
    fence_retry_initial: float = 10.0
    fence_retry_max: float = 300.0
    # the longest one call of each kind may take: a side effect starts only
    # while the lease outlives it (S2)
    bmc_call_time: float = 5.0
    nova_call_time: float = 5.0
    notify_call_time: float = 5.0
    selection: str = 'all'
    ha_metadata_key: str = 'HA_Enabled'
    ha_tag: str = 'ha-enabled'
    include_error: bool = False
    evacuation: EvacuationSettings = EvacuationSettings()


@dataclasses.dataclass
class RecoveryContext:
    """The collaborators of every recovery run by one leader."""
    store: t.Any                     # freezer_dr.ha.store.CheckpointStore
    lease: t.Any                     # freezer_dr.ha.lease.LeaderLease
    evacuator: t.Any                 # freezer_dr.evacuators.base.Evacuator
    fencers: t.Callable[[str], list]  # host -> fencing levels
    notification: Notification
    settings: RecoverySettings
    hold_reason: t.Callable[[], str | None]   # why no fencing now, or None
    stop: threading.Event
    #: whether the monitor's last look saw the host down and in service
    #: (False: it is up again; None: no look yet)
    host_down: t.Callable[[str], bool | None] = lambda host: None


class RecoveryRunner:
    """Drives one record forward until it is terminal or has to wait."""

    def __init__(self, ctx: RecoveryContext, record: RecoveryRecord) -> None:
        self.ctx = ctx
        self.record = record
        self._lock = threading.Lock()

    # -- plumbing --------------------------------------------------------
    def guard(self, need: float) -> None:
        """Raise unless the lease outlives a side effect of ``need`` s."""
        self.ctx.lease.ensure_waiting(need, self.ctx.stop)

    def guard_bmc(self) -> None:
        self.guard(self.ctx.settings.bmc_call_time)

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

    def transition(self, step: Step, note: str = '', **changes) -> None:
        for name, value in changes.items():
            setattr(self.record, name, value)
        self.record.step = step.value
        self.record.steps.append({'step': step.value, 'at': now(),
                                  'note': note})
        self.save()
        LOG.info('recovery %s of host %s: %s%s', self.record.id,
                 self.record.host, step.value, f' ({note})' if note else '')

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
        if self.record.step in (Step.ISOLATING.value,
                                Step.EVACUATING.value):
            self._recheck_power()
        while not self.record.terminal:
            step = Step(self.record.step)
            if not handlers[step]():
                return
        self.ctx.store.finish_recovery(self.record)
        LOG.info('recovery %s of host %s finished: %s (%s)', self.record.id,
                 self.record.host, self.record.step, self.record.reason)

    def _recheck_power(self) -> None:
        """Resuming past fencing: is the host still off? (S1 on takeover)

        Only a BMC that answers "on" undoes the fence evidence; one that
        cannot be read leaves the verified power-off of this recovery
        standing (a dead BMC is no sign of a running host).
        """
        deadline = time.monotonic() + self.ctx.settings.fence_timeout
        state = fence_levels.read_power(self.ctx.fencers(self.record.host),
                                        deadline)
        if state == PowerState.ON:
            self.transition(Step.FENCING, 'resumed: host found powered on '
                            'again, fencing it again')

    def _gate(self) -> bool:
        record = self.record
        if record.step == Step.HELD.value and now() < record.next_attempt_at:
            return False
        if self.ctx.host_down(record.host) is False:
            self.transition(Step.NOTIFYING, 'host came back up before it '
                            'was fenced: nothing done',
                            reason='host came back up before it was fenced:'
                                   ' nothing done')
            return True
        reason = self.ctx.hold_reason()
        if reason:
            if record.step != Step.HELD.value or record.reason != reason:
                self.transition(Step.HELD, reason, reason=reason)
            return False
        self.transition(Step.FENCING, reason=None)
        return True

    def _fence(self) -> bool:
        record = self.record
        hold = self.ctx.hold_reason()
        if hold:                  # resumed at fencing while a gate is shut
            self.transition(Step.HELD, hold, reason=hold)
            return False
        deadline = time.monotonic() + self.ctx.settings.fence_timeout
        result = fence_levels.fence_node(record.host,
                                         self.ctx.fencers(record.host),
                                         deadline, guard=self.guard_bmc)
        evidence = dataclasses.asdict(result)
        if result.success:
            self.transition(Step.ISOLATING,
                            f'{result.level}: power {result.power_state}',
                            fence=evidence)
            return True
        attempts = record.fence_attempts + 1
        wait = gates.backoff(attempts, self.ctx.settings.fence_retry_initial,
                             self.ctx.settings.fence_retry_max)
        reason = f'fencing failed: {result.detail}'
        self.transition(Step.HELD, f'{reason}; retry in {wait:.0f} s',
                        fence=evidence, fence_attempts=attempts,
                        next_attempt_at=now() + wait, reason=reason)
        self.ctx.notification.alert(self, 'fence_failed', reason)
        return False

    def _isolate(self) -> bool:
        record = self.record
        fence = record.fence or {}
        if not (fence.get('success') and fence.get('power_state') == 'off'):
            self.transition(Step.FENCING, 'no verified power-off recorded: '
                            'fencing first')       # never without it (S1)
            return True
        self.ctx.evacuator.isolate(
            record.host, f'freezer-dr recovery {record.id}: host failed '
                         f'and was fenced', guard=self.guard_nova)
        if not record.instances:
            record.instances = self._select(record.host)
        self.transition(Step.EVACUATING,
                        f'{len(record.instances)} instance(s) selected')
        return True

    def _select(self, host: str) -> list[InstanceRecord]:
        s = self.ctx.settings
        servers = self.ctx.evacuator.instances(host)
        chosen = selection.select(servers, s.selection, s.ha_metadata_key,
                                  s.ha_tag, s.include_error)
        chosen_ids = {srv.id for srv in chosen}
        records = []
        for srv in chosen + [x for x in servers if x.id not in chosen_ids]:
            skipped = srv.id not in chosen_ids
            records.append(InstanceRecord(
                id=srv.id, name=srv.name, project_id=srv.project_id,
                user_id=srv.user_id, original_status=srv.status,
                marked=selection.is_marked(srv, s.ha_metadata_key, s.ha_tag),
                state=(InstanceState.SKIPPED if skipped
                       else InstanceState.PENDING).value,
                error=('not selected for evacuation' if skipped else None)))
        return records

    def _evacuate(self) -> bool:
        record = self.record
        Evacuation(record.host, record.instances, self.ctx.evacuator,
                   self.ctx.settings.evacuation, self.save, self.guard_nova,
                   self.ctx.stop).run()
        failed = [i for i in record.instances
                  if i.state == InstanceState.FAILED.value]
        done = [i for i in record.instances
                if i.state == InstanceState.DONE.value]
        reason = f'{len(done)} evacuated'
        if failed:
            reason += f', {len(failed)} failed'
        self.transition(Step.NOTIFYING, reason, reason=reason,
                        failed_step=(Step.EVACUATING.value if failed
                                     else None))
        return True

    def _notify(self) -> bool:
        if self.record.reopened:    # users had their mail: admins only
            self.ctx.notification.alert(
                self, f'retry-{self.record.reopened}',
                f'retried recovery ended: {self.record.reason}')
        else:
            self.ctx.notification.recovered(self)
        final = Step.FAILED if self.record.failed_step else Step.DONE
        self.transition(final, self.record.reason or '', finished_at=now())
        return True
