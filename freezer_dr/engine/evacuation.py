"""Evacuate the instances of a fenced host, in parallel, to completion.

Each instance walks ``pending -> requested -> done | failed`` inside the
recovery record. ``requested`` is checkpointed *before* the evacuate call,
together with the ids of the evacuation migrations Nova already had for
the server, so after a takeover (or a call that timed out) the new leader
asks Nova (task state, any *new* migration) before sending another one: an
instance is evacuated again only when the previous attempt is known to have
failed, or to have never reached Nova after a full API timeout (S3).
Attempts are never refunded, so a cloud that keeps refusing ends in
``failed`` after ``max_attempts``, with a backoff between attempts.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
import time
import typing as t

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.engine import tracking
from freezer_dr.evacuators.base import Evacuator
from freezer_dr.model import Instance
from freezer_dr.model import InstanceRecord
from freezer_dr.model import InstanceState
from freezer_dr.model import now

LOG = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class EvacuationSettings:
    """Pacing of one host's evacuations (from ``[evacuation]``)."""
    max_parallel: int = 16
    instance_timeout: float = 300.0
    max_attempts: int = 3
    poll_interval: float = 1.0
    restore_power_state: bool = True
    api_timeout: float = 5.0


class Evacuation:
    """Runs every pending instance of one recovery to a terminal state.

    ``save`` checkpoints the whole record (a fenced write); ``guard(need)``
    raises :class:`~freezer_dr.exceptions.LeadershipLost` unless this
    replica may still start a side effect expected to take ``need``
    seconds; ``stop`` is set when the leader loses its lease.
    """

    def __init__(self, host: str, instances: list[InstanceRecord],
                 evacuator: Evacuator, settings: EvacuationSettings,
                 save: t.Callable[[], None], guard: t.Callable[[], None],
                 stop: threading.Event) -> None:
        self.host = host
        self.instances = instances
        self.evacuator = evacuator
        self.settings = settings
        self._save = save
        self._guard = guard
        self._stop = stop
        self._abort = threading.Event()    # a sibling failed: wind down
        self._started = now()
        self._lock = threading.Lock()

    def run(self) -> None:
        """Return when every instance is terminal; raise LeadershipLost."""
        todo = [i for i in self.instances
                if not InstanceState(i.state).terminal]
        if not todo:
            return
        workers = min(self.settings.max_parallel, len(todo))
        with concurrent.futures.ThreadPoolExecutor(
                workers, thread_name_prefix=f'evacuate-{self.host}') as pool:
            futures = [pool.submit(self._follow, inst) for inst in todo]
            for future in concurrent.futures.as_completed(futures):
                error = future.exception()
                if error is not None:
                    self._abort.set()   # wind the siblings down, then raise
                    for other in futures:
                        other.cancel()
                    raise error

    def _wait(self, seconds: float) -> None:
        """Sleep, but raise at once when the recovery must stop."""
        deadline = time.monotonic() + seconds
        while not self._stop.wait(min(0.1, max(0.0, deadline -
                                               time.monotonic()))):
            if self._abort.is_set():
                raise exceptions.LeadershipLost('evacuation wound down')
            if time.monotonic() >= deadline:
                return
        raise exceptions.LeadershipLost('recovery stopped')

    # -- one instance ----------------------------------------------------
    def _follow(self, inst: InstanceRecord) -> None:
        while not InstanceState(inst.state).terminal:
            if self._stop.is_set() or self._abort.is_set():
                raise exceptions.LeadershipLost('recovery stopped')
            if inst.state == InstanceState.PENDING:
                self._request(inst)
            else:
                self._track(inst)
                if not InstanceState(inst.state).terminal:
                    self._wait(self.settings.poll_interval)

    def _update(self, inst: InstanceRecord, **changes: t.Any) -> None:
        """Change ``inst`` and checkpoint the record.

        etcd being briefly unreachable is no reason to stop following
        evacuations that are under way: the checkpoint is retried until it
        lands or the lease runs out (then ``stop`` is set and
        LeadershipLost ends the run).
        """
        with self._lock:
            for name, value in changes.items():
                setattr(inst, name, value)
            delay = 0.2
            while True:
                try:
                    return self._save()
                except exceptions.StoreUnavailable as error:
                    LOG.warning('host %s: checkpoint failed (%s); retrying '
                                'in %.1f s', self.host, error, delay)
                    self._wait(delay)
                    delay = min(2.0, delay * 2)

    def _request(self, inst: InstanceRecord) -> None:
        if inst.attempts >= self.settings.max_attempts:
            self._update(inst, state=InstanceState.FAILED,
                         finished_at=now(),
                         error=f'gave up after {inst.attempts} attempts: '
                               f'{inst.error}')
            return
        if inst.attempts:                      # back off between attempts
            self._wait(self.settings.poll_interval * inst.attempts)
        # Which evacuations exist before this attempt: only a new one can
        # be this attempt's (no clock is compared with Nova's).
        try:
            known = [m['id']
                     for m in self.evacuator.evacuations(inst.id, 0.0)]
        except exceptions.CloudUnavailable as error:
            LOG.warning('host %s: evacuations of %s: %s', self.host,
                        inst.id, error)
            self._check_timeout(inst, f'evacuations unreadable: {error}')
            if not InstanceState(inst.state).terminal:
                self._wait(self.settings.poll_interval)
            return
        self._update(inst, state=InstanceState.REQUESTED,
                     attempts=inst.attempts + 1, requested_at=now(),
                     first_requested_at=inst.first_requested_at or now(),
                     known_migrations=known, error=None)
        LOG.info('host %s: evacuating instance %s (%s), attempt %d',
                 self.host, inst.id, inst.name, inst.attempts)
        try:
            # the lease is checked inside, right before the request goes
            # on the wire: after the checkpoint and any re-auth (S2)
            self.evacuator.evacuate(
                inst.id, guard=self._guard,
                keep_stopped=(self.settings.restore_power_state
                              and inst.original_status == 'SHUTOFF'))
        except (exceptions.EvacuationFailed,
                exceptions.CloudUnavailable) as error:
            # Refused (4xx) or unknown (timeout, 5xx): either way the
            # server's state and Nova's migrations tell what happened; a
            # 409 may well mean an evacuation is already under way.
            LOG.warning('host %s: evacuate %s: %s (will reconcile)',
                        self.host, inst.id, error)
            self._update(inst, error=str(error))

    def _track(self, inst: InstanceRecord) -> None:
        try:
            server = self.evacuator.status(inst.id)
        except exceptions.CloudUnavailable as error:
            LOG.warning('host %s: status of %s: %s', self.host, inst.id,
                        error)
            return self._check_timeout(inst)
        except exceptions.EvacuationFailed as error:   # server gone
            self._update(inst, state=InstanceState.FAILED,
                         finished_at=now(), error=str(error))
            return
        verdict = tracking.classify(inst, server, self.host)
        if verdict == 'done':
            note = None
            try:
                self._restore_power(inst, server)
            except exceptions.CloudUnavailable as error:
                if not self._timed_out(inst):
                    LOG.warning('host %s: restoring the power state of %s: '
                                '%s (will retry)', self.host, inst.id, error)
                    return
                note = f'evacuated, but power state not restored: {error}'
            except exceptions.EvacuationFailed as error:
                note = f'evacuated, but power state not restored: {error}'
            self._update(inst, state=InstanceState.DONE,
                         target_host=server.host, finished_at=now(),
                         error=note)
            LOG.info('host %s: instance %s evacuated to %s', self.host,
                     inst.id, server.host)
        elif verdict == 'failed':
            self._retry_or_fail(inst, f'evacuation failed: server is '
                                      f'{server.status} on {server.host}')
        elif not server.task_state and server.host == self.host:
            self._reconcile_untouched(inst)
        else:
            self._check_timeout(inst)

    def _reconcile_untouched(self, inst: InstanceRecord) -> None:
        """Still on the source with no task: did Nova ever get the call?"""
        try:
            new = [m for m in self.evacuator.evacuations(inst.id, 0.0)
                   if m['id'] not in inst.known_migrations]
        except exceptions.CloudUnavailable:
            return self._check_timeout(inst)
        if new:
            status = new[-1].get('status')
            if status in ('failed', 'error'):
                self._retry_or_fail(inst, f'evacuation migration {status}')
            else:
                self._check_timeout(inst)
            return
        # Nova answers an accepted evacuate by setting the task state at
        # once; give a slow or in-flight call its full timeout before
        # concluding that this attempt never reached Nova.
        if now() - self._since(inst) < self.settings.api_timeout + \
                2 * self.settings.poll_interval:
            return
        LOG.info('host %s: attempt %d to evacuate %s never reached Nova',
                 self.host, inst.attempts, inst.id)
        self._retry_or_fail(inst, inst.error or 'evacuation not accepted')

    def _retry_or_fail(self, inst: InstanceRecord, error: str) -> None:
        if inst.attempts < self.settings.max_attempts:
            self._update(inst, state=InstanceState.PENDING, error=error)
        else:
            self._update(inst, state=InstanceState.FAILED,
                         finished_at=now(), error=error)

    def _since(self, inst: InstanceRecord) -> float:
        """When this runner's wait for ``inst`` began (takeover-aware)."""
        return max(inst.requested_at or 0.0, self._started)

    def _timed_out(self, inst: InstanceRecord) -> bool:
        """Past the instance timeout since this runner began waiting, or
        past every attempt's timeout since the first request (so leaders
        that keep changing cannot keep restarting the wait)."""
        settings = self.settings
        hard_cap = (settings.max_attempts + 1) * settings.instance_timeout
        return (now() - self._since(inst) > settings.instance_timeout
                or now() - (inst.first_requested_at or now()) > hard_cap)

    def _check_timeout(self, inst: InstanceRecord,
                       why: str | None = None) -> None:
        if self._timed_out(inst):
            error = f'timed out after {now() - self._since(inst):.0f} s'
            self._update(inst, state=InstanceState.FAILED, finished_at=now(),
                         error=f'{error}: {why}' if why else error)

    def _restore_power(self, inst: InstanceRecord, server: Instance) -> None:
        if not self.settings.restore_power_state:
            return
        start = tracking.power_to_restore(inst.original_status, server)
        if start is None:
            return
        self.evacuator.set_power(inst.id, on=start, guard=self._guard)
        want = 'ACTIVE' if start else 'SHUTOFF'
        deadline = now() + self.settings.instance_timeout
        while now() < deadline:
            self._wait(self.settings.poll_interval)
            server = self.evacuator.status(inst.id)
            if server.status == want and not server.task_state:
                return
        raise exceptions.EvacuationFailed(
            f'instance {inst.id} did not reach {want} in time')
