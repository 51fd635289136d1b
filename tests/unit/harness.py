"""The in-memory world's recovery harness, shared by the runner's unit
tests: one host's recovery driven step by step (``Harness``), and the
invariants checked from the world's log, never from the record.
"""
from __future__ import annotations

import threading

from freezer_dr import exceptions
from freezer_dr.engine import operator_requests
from freezer_dr.engine.evacuation import EvacuationSettings
from freezer_dr.engine.notify import Notification
from freezer_dr.engine.recovery import RecoveryRunner
from freezer_dr.engine.recovery_context import RecoveryContext
from freezer_dr.engine.recovery_context import RecoverySettings
from freezer_dr.engine.runners import RunnerPool
from freezer_dr.model import RecoveryRecord
from freezer_dr.model import Step
from tests.unit import fakes

HOST = 'c1'
MAX_ATTEMPTS = 2
SETTINGS = RecoverySettings(
    fence_level_timeout=1.0, fence_retry_initial=0.0, fence_retry_max=0.0,
    bmc_call_time=0.1, nova_call_time=0.1, notify_call_time=0.1,
    evacuation=EvacuationSettings(
        max_parallel=3, instance_timeout=0.3, max_attempts=MAX_ATTEMPTS,
        poll_interval=0.001, api_timeout=0.005))



class Harness:
    """One host's recovery, its world, and the leader of the moment."""

    def __init__(self, statuses: list[str], power: str, manual: bool,
                 rebuild_polls: int) -> None:
        self.world = fakes.World(power=power)
        self.store = fakes.FakeStore(self.world)
        self.epoch = 0
        self.new_term()
        lease_of = lambda: self.lease             # noqa: E731
        levels = [fakes.FakeBmcFencer(HOST, self.world, lease_of)]
        self.confirmations: dict[str, float] = {}
        if manual:
            levels.append(fakes.manual_level(HOST, self.confirmations))
        self.levels = levels
        self.nova = fakes.FakeNova(self.world, HOST, statuses, lease_of,
                                   rebuild_polls)
        self.mailer = fakes.FakeMailer(self.world, lease_of)
        self.hold: str | None = None
        self.host_down: bool | None = True
        self.pool = RunnerPool()
        self.settings = SETTINGS
        #: the last readiness check's reading: (power, etcd revision)
        self.readiness: tuple[str, int] | None = None
        self.store.put_recovery(RecoveryRecord(id='r1', host=HOST))

    def new_term(self) -> None:
        """A takeover: the old lease is gone, a new epoch leads."""
        if getattr(self, 'lease', None) is not None and self.lease.valid:
            self.lease.lose()
        self.epoch += 1
        self.store.leader_epoch = self.epoch
        self.stop = threading.Event()
        self.lease = fakes.FakeLease(self.world, self.stop, epoch=self.epoch)
        self.store.lease = self.lease

    def cycle(self) -> None:
        """What the leader loop does before dispatching: requests."""
        live = {r.host: r for r in self.store.recoveries()}
        try:
            operator_requests.handle(self.store, live, set())
        except exceptions.FreezerDRError:
            pass

    def run(self, requests: bool = True) -> None:
        """A leader cycle: operator requests (unless ``requests`` is
        False: a retry dispatched before the leader read them), then the
        runner."""
        if requests:
            self.cycle()
        record = self.store.get_recovery(HOST)
        if record is None:
            return
        ctx = RecoveryContext(
            store=self.store, lease=self.lease, evacuator=self.nova,
            fencers=lambda host: self.levels,
            notification=Notification({'mail': self.mailer}, 2, self.stop,
                                      retry_delay=0.0),
            settings=self.settings, hold_reason=lambda host: self.hold,
            stop=self.stop, host_down=lambda host: self.host_down,
            confirmations=self.confirmations,
            power_on_since=self.power_on_since)
        self.pool._run(RecoveryRunner(ctx, record))

    def power_on_since(self, host: str, revision: int) -> bool:
        return (self.readiness is not None and self.readiness[0] == 'on'
                and self.readiness[1] > revision)

    def readiness_check(self) -> None:
        """The leader's readiness checker reads the BMC (never a command)
        and stores the result (a write: a new etcd revision)."""
        level = self.levels[0]
        try:
            power = level.power_state(0.0).value
        except exceptions.FenceFailed:
            return
        self.store.revision += 1
        self.readiness = (power, self.store.revision)

    def confirm(self) -> None:
        record = self.store.get_recovery(HOST)
        if record is not None:
            self.store.request('fence-confirmed', HOST,
                               {'by': 'ops', 'recovery_id': record.id})

    def retry(self) -> None:
        self.store.request('retry', HOST, {'recovery_id': 'r1'})


def settle(h: Harness) -> None:
    """A healthy leader with open gates runs until nothing moves."""
    h.new_term()
    h.hold, h.host_down = None, True
    h.nova.errors = h.nova.lost_replies = 0
    h.store.fail_writes = h.mailer.failures = 0
    for _ in range(12):
        before = len(h.world.log)
        h.run()
        record = h.store.get_recovery(HOST)
        if record is None or len(h.world.log) == before:
            return


# -- invariants, from the world's log ----------------------------------------
def check_lease(world: fakes.World) -> list[str]:
    return [f'S2: {e["kind"]} #{e["seq"]} without a valid lease'
            for e in world.log
            if e['kind'] in ('bmc_off', 'isolate', 'evacuate', 'set_power',
                             'mail') and not e['lease_valid']]


def check_fenced(world: fakes.World) -> list[str]:
    """Every isolate/evacuate: off evidence newer than the last ON read."""
    problems = []
    last_on = last_off = last_confirm = -1
    for e in world.log:
        if e['kind'] == 'bmc_read' and e['result'] == 'on':
            last_on = e['seq']
        elif e['kind'] == 'bmc_read' and e['result'] == 'off':
            last_off = e['seq']
        elif e['kind'] == 'request' and e['request'] == 'fence-confirmed':
            last_confirm = e['seq']
        elif e['kind'] in ('isolate', 'evacuate'):
            evidence = max(last_off, last_confirm)
            if evidence < 0 or evidence < last_on:
                problems.append(
                    f'S1: {e["kind"]} #{e["seq"]} with no power-off evidence '
                    f'newer than the ON reading #{last_on}')
    return problems


def check_evacuations(world: fakes.World, h: Harness) -> list[str]:
    problems = [f'S3: Nova refused evacuate #{e["seq"]} of {e["instance"]}:'
                f' one was under way or it had moved'
                for e in world.events('evacuate_refused')]
    rounds = 1 + sum(1 for e in world.events('request')
                     if e['request'] == 'retry')
    for server in h.nova.servers:
        sent = [e for e in world.events('evacuate')
                if e['instance'] == server]
        if len(sent) > MAX_ATTEMPTS * rounds:
            problems.append(f'S3: {server} evacuated {len(sent)} times')
    return problems


def check_ended(h: Harness) -> list[str]:
    record = h.store.get_recovery(HOST)
    if record is None:
        ended = h.store.find('r1')
        if ended is None or not ended.terminal or not ended.reason:
            return ['S4: the recovery vanished without a terminal reason']
        return []
    alerted = any(e['mail_kind'] != 'recovered'
                  for e in h.world.events('mail'))
    if record.step == 'held' and (alerted or record.outbox):
        return []
    return [f'S4: the recovery rests at {record.step.value} '
            f'({record.reason}) with no alert']


def invariants(h: Harness) -> list[str]:
    """Lease, fenced-first and one-evacuation-each, from the world's log."""
    return (check_lease(h.world) + check_fenced(h.world)
            + check_evacuations(h.world, h))


def step(h: Harness) -> Step | None:
    record = h.store.get_recovery(HOST)
    return record.step if record else None


def alerts(h: Harness, kind: str) -> list[dict]:
    return [e for e in h.world.events('mail') if e['mail_kind'] == kind]
