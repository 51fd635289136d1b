"""In-memory stand-ins for the recovery runner's collaborators.

Used only by the property-based tests of the recovery state machine
(``test_recovery_properties.py``) and the runner's unit tests, where
hypothesis needs thousands of runs: a lease that can be lost at any call,
a store with etcd's revisions and fencing, a BMC, a Nova and a mailbox.
Every side effect is logged in one :class:`World` with whether the lease
was valid at that moment, so the invariants are checked from the world's
log, never from the runner's record. The real parts are covered by the
functional, realnova and chaos tiers.
"""
from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import threading
import typing as t

from freezer_dr import exceptions
from freezer_dr.fencers.base import Fencer
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.manual import ManualFencer
from freezer_dr.model import FenceResult
from freezer_dr.model import Instance
from freezer_dr.model import PowerState
from freezer_dr.model import RecoveryRecord
from freezer_dr.model import now
from freezer_dr.notifiers.base import Notifier


@dataclasses.dataclass
class World:
    """Ground truth: the host's power, the servers, and a log of events."""
    power: str = 'on'
    bmc_mode: str = 'ok'          # ok, unreachable, stuck, wrong-password
    log: list[dict] = dataclasses.field(default_factory=list)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _seq: t.Iterator[int] = dataclasses.field(
        default_factory=itertools.count)

    def record(self, kind: str, **fields: t.Any) -> None:
        with self.lock:
            self.log.append({'seq': next(self._seq), 'kind': kind,
                             **fields})

    def events(self, kind: str) -> list[dict]:
        return [e for e in self.log if e['kind'] == kind]


class FakeLease:
    """A lease that is lost at the n-th check (``lose_at``), or by hand."""

    ttl = 10.0
    margin = 0.5

    def __init__(self, world: World, stop: threading.Event,
                 lose_at: int | None = None, epoch: int = 1) -> None:
        self.world = world
        self.stop = stop
        self.epoch = epoch
        self.valid = True
        self.checks = 0
        self.lose_at = lose_at

    def lose(self) -> None:
        self.valid = False
        self.stop.set()
        self.world.record('lease_lost', epoch=self.epoch)

    def tick(self) -> None:
        """One lease-relevant moment passes (a check, or an etcd round
        trip that took time): the lease may run out here."""
        self.checks += 1
        if self.lose_at is not None and self.checks >= self.lose_at \
                and self.valid:
            self.lose()

    def ensure(self, need: float = 0.0) -> int:
        self.tick()
        if not self.valid:
            raise exceptions.LeadershipLost(f'epoch {self.epoch} lost')
        return self.epoch

    def ensure_waiting(self, need: float, stop: threading.Event) -> int:
        if stop.is_set():
            raise exceptions.LeadershipLost('stopped')
        return self.ensure(need)


class FakeStore:
    """Records as JSON with etcd-like revisions; writes fenced by epoch."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.revision = 0
        self.live: dict[str, tuple[str, int]] = {}
        self.history: dict[str, str] = {}
        self.requests_: dict[tuple[str, str], dict] = {}
        self.leader_epoch = 1
        self.lease: FakeLease | None = None
        self.fail_writes = 0            # next n writes: StoreUnavailable
        self._lock = threading.Lock()

    def _write_check(self) -> int:
        if self.fail_writes:
            self.fail_writes -= 1
            raise exceptions.StoreUnavailable('etcd timed out')
        epoch = self.lease.ensure() if self.lease else 0
        if epoch != self.leader_epoch:
            raise exceptions.StaleEpoch(f'epoch {epoch} is not the leader')
        self.revision += 1
        return self.revision

    def put_recovery(self, record: RecoveryRecord, need: float = 0.0) -> None:
        with self._lock:
            current = self.live.get(record.host)
            if (current[1] if current else None) != record.revision:
                raise exceptions.StaleRecord('record changed since read')
            revision = self._write_check()
            record.epoch = self.leader_epoch
            self.live[record.host] = (json.dumps(record.to_dict()),
                                      revision)
            record.revision = revision
        if self.lease is not None:
            self.lease.tick()     # the round trip took time: may run out

    def finish_recovery(self, record: RecoveryRecord) -> None:
        with self._lock:
            current = self.live.get(record.host)
            if (current[1] if current else None) != record.revision:
                raise exceptions.StaleRecord('record changed since read')
            self._write_check()
            self.history[record.id] = json.dumps(record.to_dict())
            del self.live[record.host]
            record.revision = None

    def get_recovery(self, host: str) -> RecoveryRecord | None:
        with self._lock:
            found = self.live.get(host)
        if found is None:
            return None
        record = RecoveryRecord.from_dict(json.loads(found[0]))
        record.revision = found[1]
        return record

    def recoveries(self, unreadable=None) -> list[RecoveryRecord]:
        return [self.get_recovery(h) for h in sorted(self.live)]

    def find(self, recovery_id: str) -> RecoveryRecord | None:
        for record in self.recoveries():
            if record.id == recovery_id:
                return record
        raw = self.history.get(recovery_id)
        return RecoveryRecord.from_dict(json.loads(raw)) if raw else None

    # operator requests (unfenced writes, with their revision)
    def request(self, kind: str, host: str, data: dict) -> None:
        with self._lock:
            self.revision += 1
            self.requests_[(kind, host)] = {**data,
                                            'revision': self.revision}
            self.world.record('request', request=kind, host=host,
                              revision=self.revision)

    def requests(self, kind: str, unreadable=None) -> dict[str, dict]:
        return {h: dict(d) for (k, h), d in self.requests_.items()
                if k == kind}

    def clear_request(self, kind: str, host: str) -> None:
        self._write_check()
        self.requests_.pop((kind, host), None)


class FakeBmcFencer(Fencer):
    """A BMC in front of ``world.power``; every read and command logged."""

    driver = 'fakebmc'

    def __init__(self, host: str, world: World, lease_of) -> None:
        super().__init__(host, {})
        self.world = world
        self.lease_of = lease_of      # () -> the lease current at the call

    def _read(self) -> str:
        if self.world.bmc_mode in ('unreachable', 'wrong-password'):
            self.world.record('bmc_read', result='error')
            raise exceptions.FenceFailed(
                f'{self.host}: BMC {self.world.bmc_mode}')
        self.world.record('bmc_read', result=self.world.power, at=now())
        return self.world.power

    def power_state(self, deadline: float) -> PowerState:
        return PowerState(self._read())

    def fence(self, deadline: float, *, guard=None) -> FenceResult:
        started = now()
        state = self._read()
        attempts = []
        if state == 'on':
            if guard is not None:
                guard()
            self.world.record('bmc_off', lease_valid=self.lease_of().valid)
            attempts.append({'action': 'off', 't': now()})   # as drivers do
            if self.world.bmc_mode != 'stuck':
                self.world.power = 'off'
            state = self._read()
        if state != 'off':
            raise exceptions.FenceFailed(f'{self.host}: still {state}',
                                         power=state, seen_at=now())
        return FenceResult(host=self.host, success=True, level=self.driver,
                           power_state='off', detail='off',
                           attempts=attempts, started_at=started,
                           finished_at=now(), evidence_at=now())


def manual_level(host: str, confirmations: dict[str, float]
                 ) -> ManualFencer:
    """The real manual fencer, reading the confirmation the runner hands
    its fencing attempt (as the leader loop wires it)."""
    return ManualFencer(host, {}, FenceContext(
        manual_confirmation=confirmations.get))


@dataclasses.dataclass
class Server:
    id: str
    status: str
    host: str
    task_state: str | None = None
    polls_left: int = 0
    migrations: list[dict] = dataclasses.field(default_factory=list)


class FakeNova:
    """Nova's evacuate rules, reduced: one evacuation at a time."""

    def __init__(self, world: World, host: str, statuses: list[str],
                 lease_of, rebuild_polls: int = 1) -> None:
        self.world = world
        self.source = host
        self.lease_of = lease_of
        self.rebuild_polls = rebuild_polls
        self.errors = 0           # next n calls: CloudUnavailable
        self.lost_replies = 0     # next n writes: done, then an error
        self.servers = {f'vm{i}': Server(f'vm{i}', status, host)
                        for i, status in enumerate(statuses)}

    def _maybe_fail(self, what: str) -> None:
        if self.errors:
            self.errors -= 1
            raise exceptions.CloudUnavailable(f'cannot {what}: HTTP 500')

    def _write(self, kind: str, guard, **fields) -> None:
        if guard is not None:
            guard()
        self.world.record(kind, lease_valid=self.lease_of().valid,
                          power=self.world.power, **fields)

    def _reply(self, what: str) -> None:
        """The write was carried out, but its answer may be lost."""
        if self.lost_replies:
            self.lost_replies -= 1
            raise exceptions.CloudUnavailable(f'{what}: read timed out')

    def isolate(self, host, reason, guard=None) -> None:
        self._maybe_fail('isolate')
        self._write('isolate', guard, host=host)
        self._reply(f'isolate {host}')

    def instances(self, host) -> list[Instance]:
        self._maybe_fail('list servers')
        return [self._view(s) for s in self.servers.values()
                if s.host == host]

    def evacuate(self, instance_id, guard=None, keep_stopped=False) -> None:
        self._maybe_fail(f'evacuate {instance_id}')
        self._write('evacuate', guard, instance=instance_id)
        server = self.servers[instance_id]
        if server.task_state or server.host != self.source:
            self.world.record('evacuate_refused', instance=instance_id)
            raise exceptions.EvacuationFailed('HTTP 409: not evacuable now')
        server.task_state = 'rebuilding'
        server.polls_left = self.rebuild_polls
        server.migrations.append({'id': f'{instance_id}-m'
                                        f'{len(server.migrations)}',
                                  'status': 'accepted'})
        self._reply(f'evacuate {instance_id}')

    def status(self, instance_id) -> Instance:
        self._maybe_fail(f'read {instance_id}')
        server = self.servers[instance_id]
        if server.task_state:
            server.polls_left -= 1
            if server.polls_left < 0:
                server.task_state, server.host = None, 'target'
                server.status = 'ACTIVE'
                server.migrations[-1]['status'] = 'done'
        return self._view(server)

    def evacuations(self, instance_id, since) -> list[dict]:
        self._maybe_fail(f'migrations of {instance_id}')
        return copy.deepcopy(self.servers[instance_id].migrations)

    def set_power(self, instance_id, on, guard=None) -> None:
        self._maybe_fail(f'power {instance_id}')
        self._write('set_power', guard, instance=instance_id, on=on)
        self.servers[instance_id].status = 'ACTIVE' if on else 'SHUTOFF'
        self._reply(f'power {instance_id}')

    def enable(self, host) -> None:
        raise NotImplementedError

    def _view(self, s: Server) -> Instance:
        return Instance(id=s.id, name=s.id, project_id='p', user_id='u',
                        status=s.status, host=s.host,
                        task_state=s.task_state)


class FakeMailer(Notifier):
    """Every delivered event, with whether the lease was valid then."""

    def __init__(self, world: World, lease_of) -> None:
        self.world = world
        self.lease_of = lease_of
        self.failures = 0          # next n sends: NotifyFailed

    def send(self, event, key: str) -> None:
        if self.failures:
            self.failures -= 1
            raise exceptions.NotifyFailed('SMTP 451')
        self.world.record('mail', key=key, mail_kind=event.kind,
                          lease_valid=self.lease_of().valid)
