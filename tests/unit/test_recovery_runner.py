"""The recovery runner against the in-memory world: the review's defects.

Each test names the defect of issue 7 it guards against; the invariants
are checked from the world's log (BMC, Nova, mailbox), as in the property
tests, which share the harness.
"""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from freezer_dr import exceptions
from freezer_dr.engine import fencing
from freezer_dr.engine.runners import MAX_STEP_ERRORS
from freezer_dr.engine.runners import RunnerPool
from freezer_dr.fencers.base import Fencer
from freezer_dr.model import InstanceState
from freezer_dr.model import Step
from tests.unit import fakes
from tests.unit.test_recovery_properties import HOST
from tests.unit.test_recovery_properties import Harness
from tests.unit.test_recovery_properties import check_ended
from tests.unit.test_recovery_properties import check_evacuations
from tests.unit.test_recovery_properties import check_fenced
from tests.unit.test_recovery_properties import check_lease
from tests.unit.test_recovery_properties import settle


def invariants(h: Harness) -> list[str]:
    return (check_lease(h.world) + check_fenced(h.world)
            + check_evacuations(h.world, h))


def step(h: Harness) -> Step | None:
    record = h.store.get_recovery(HOST)
    return record.step if record else None


def alerts(h: Harness, kind: str) -> list[dict]:
    return [e for e in h.world.events('mail') if e['mail_kind'] == kind]


def test_stale_manual_confirmation_never_passes_refencing():
    """Defect 1 (S1): a host read ON after an operator confirmed it off,
    whose BMC then cannot power it off, is held; the old confirmation
    does not let the recovery go on."""
    h = Harness(['ACTIVE', 'ACTIVE'], 'on', manual=True, rebuild_polls=50)
    h.world.bmc_mode = 'wrong-password'
    h.run()
    assert step(h) == Step.HELD                  # awaiting the operator
    h.confirm()
    h.lease.lose_at = h.lease.checks + 14        # mid-evacuation
    h.run()
    assert step(h) == Step.EVACUATING
    h.world.bmc_mode = 'stuck'                   # reads ON, never off
    h.new_term()
    h.run()
    assert step(h) == Step.HELD
    assert alerts(h, 'power_on') and alerts(h, 'fence_failed')
    assert invariants(h) == []
    # the isolation is not redone while the host is ON
    on = max(e['seq'] for e in h.world.events('bmc_read')
             if e['result'] == 'on')
    assert not [e for e in h.world.events('isolate') if e['seq'] > on]


def test_confirmation_written_before_an_on_reading_is_refused():
    """Defect 1: a confirmation names the recovery and must be newer than
    the record's last change (an ON reading drops it)."""
    h = Harness(['ACTIVE'], 'on', manual=True, rebuild_polls=0)
    h.world.bmc_mode = 'wrong-password'
    h.run()
    h.confirm()                         # written now...
    h.world.bmc_mode = 'stuck'          # ...then the BMC reads it ON
    h.run()
    assert step(h) == Step.HELD
    assert h.world.events('isolate') == []
    assert invariants(h) == []


@pytest.mark.parametrize('manual', [False, True])
@pytest.mark.parametrize('statuses', [['ACTIVE', 'SHUTOFF'], ['ERROR']])
def test_lease_lost_at_every_call_of_a_recovery(manual, statuses):
    """Defect 2 (S2): wherever the lease runs out, even during the
    checkpoint right before an evacuate, no side effect follows, and a
    new leader finishes the recovery with each instance evacuated once."""
    total = _ticks_of_a_full_recovery(manual, statuses)
    for n in range(1, total + 2):
        h = Harness(statuses, 'on', manual=manual, rebuild_polls=1)
        h.lease.lose_at = n
        h.run()
        settle(h)
        problems = invariants(h) + check_ended(h)
        assert problems == [], f'lease lost at check {n}: {problems}'
        assert step(h) is None


def _ticks_of_a_full_recovery(manual, statuses) -> int:
    h = Harness(statuses, 'on', manual=manual, rebuild_polls=1)
    h.run()
    assert step(h) is None
    return h.lease.checks


class SlowLevel(Fencer):
    """A level that spends its whole budget and reads nothing."""
    driver = 'slow'

    def power_state(self, deadline):
        raise exceptions.FenceFailed('no answer')

    def fence(self, deadline, *, guard=None):
        time.sleep(max(0.0, deadline - time.monotonic()))
        raise exceptions.FenceFailed('no answer within the deadline')


def test_a_slow_level_does_not_starve_the_next_one():
    """Defect 6: each level has its own budget."""
    world, store = fakes.World(), None
    store = fakes.FakeStore(world)
    seen = []

    class Confirmed(Fencer):
        driver = 'manual'
        operator_confirmed = True

        def power_state(self, deadline):
            raise AssertionError('never read')

        def fence(self, deadline, *, guard=None):
            seen.append(deadline - time.monotonic())
            from freezer_dr.model import FenceResult
            return FenceResult(host=HOST, success=True, level='manual',
                               power_state='off', evidence_at=1.0)

    del store
    result = fencing.fence_node(HOST, [SlowLevel(HOST, {}),
                                       Confirmed(HOST, {})], 0.3)
    assert result.success and result.level == 'manual'
    assert seen and seen[0] > 0.2         # a full budget of its own


def test_fencing_errors_of_any_kind_hold_with_an_alert():
    """Minor: an unexpected error while fencing is a failed attempt
    (held, backoff, admins alerted), not a silent retry forever."""
    class Broken(Fencer):
        driver = 'broken'

        def power_state(self, deadline):
            raise RuntimeError('driver bug')

        def fence(self, deadline, *, guard=None):
            raise RuntimeError('driver bug')

    h = Harness(['ACTIVE'], 'on', manual=False, rebuild_polls=0)
    h.levels = [Broken(HOST, {})]
    h.run()
    record = h.store.get_recovery(HOST)
    assert record.step == Step.HELD and 'RuntimeError' in record.reason
    assert alerts(h, 'fence_failed')


def test_a_level_with_a_bug_does_not_keep_the_next_level_from_fencing():
    """Review: a plugin level whose result does not parse (a power state
    of 'of') raised out of the level walk, so the next level was never
    tried and the host stayed held."""
    class Typo(Fencer):
        driver = 'typo'

        def power_state(self, deadline):
            raise exceptions.FenceFailed('reads nothing')

        def fence(self, deadline, *, guard=None):
            from freezer_dr.model import FenceResult
            return FenceResult(host=HOST, success=True, level='typo',
                               power_state='of')

    world = fakes.World(power='on')
    lease = fakes.FakeLease(world, threading.Event())
    result = fencing.fence_node(
        HOST, [Typo(HOST, {}), fakes.FakeBmcFencer(HOST, world,
                                                   lambda: lease)], 1.0)
    assert result.success and world.power == 'off'
    assert result.attempts[0]['result'] == 'failed'
    assert 'ValueError' in result.attempts[0]['error']
    # review (S1): the broken level may have read the host ON; a next
    # level that only reads it off, sending no command, is not evidence
    off_world = fakes.World(power='off')
    result = fencing.fence_node(
        HOST, [Typo(HOST, {}), fakes.FakeBmcFencer(HOST, off_world,
                                                   lambda: lease)], 1.0)
    assert not result.success and 'contradictory' in result.detail


def test_a_guard_that_can_never_be_satisfied_is_an_error_not_a_loss():
    """Minor: need + margin >= ttl raises GuardUnsatisfiable, which the
    fencing step turns into a held recovery with an alert."""
    h = Harness(['ACTIVE'], 'on', manual=False, rebuild_polls=0)
    h.settings = dataclasses.replace(h.settings, bmc_call_time=h.lease.ttl)
    h.run()
    record = h.store.get_recovery(HOST)
    assert record.step == Step.HELD
    assert 'can never start' in record.reason
    assert alerts(h, 'fence_failed')
    assert h.world.events('bmc_off') == []


def test_host_on_after_a_partial_evacuation_alerts_even_when_paused():
    """Minor: instances may run twice; admins hear of it whatever the
    gates say, and nothing more is done while paused."""
    h = Harness(['ACTIVE', 'ACTIVE', 'ACTIVE'], 'on', manual=False,
                rebuild_polls=50)
    h.lease.lose_at = 14            # after the first evacuate
    h.run()
    record = h.store.get_recovery(HOST)
    assert record.step == Step.EVACUATING
    assert any(i.state == InstanceState.REQUESTED for i in record.instances)
    h.world.power = 'on'             # someone switched it back on
    h.hold = 'paused'
    h.new_term()
    h.run()
    assert step(h) == Step.HELD
    [alert] = alerts(h, 'power_on')
    assert invariants(h) == []


def test_unreadable_migrations_end_in_failed_after_the_timeout():
    """Minor: a pending instance whose evacuations() keeps failing does
    not loop forever."""
    h = Harness(['ACTIVE'], 'on', manual=False, rebuild_polls=0)
    h.nova.errors = 10 ** 6
    h.nova.isolate = lambda *a, **k: None       # isolation goes through
    h.nova.instances = lambda host: [h.nova._view(s)
                                     for s in h.nova.servers.values()]
    h.run()
    for _ in range(3):
        h.run()
    history = h.store.find('r1')
    assert history is not None and history.step == Step.FAILED
    [inst] = history.instances
    assert inst.state == InstanceState.FAILED and 'timed out' in inst.error


def test_a_transient_etcd_error_does_not_abort_the_evacuation():
    """Minor: one etcd error mid-evacuation is retried in place; every
    instance is evacuated exactly once in the same run."""
    h = Harness(['ACTIVE', 'ACTIVE', 'SHUTOFF'], 'on', manual=False,
                rebuild_polls=2)
    h.run()      # reset: count writes of a clean run
    writes = h.store.revision
    h = Harness(['ACTIVE', 'ACTIVE', 'SHUTOFF'], 'on', manual=False,
                rebuild_polls=2)
    original = h.store.put_recovery
    calls = {'n': 0}

    def flaky(record, need=0.0):
        calls['n'] += 1
        if calls['n'] == writes // 2:
            raise exceptions.StoreUnavailable('etcd timed out')
        return original(record, need)

    h.store.put_recovery = flaky
    h.run()
    assert step(h) is None and h.store.find('r1').step == Step.DONE
    assert len(h.world.events('evacuate')) == 3
    assert invariants(h) == []


def test_step_errors_count_only_without_progress():
    """Minor: errors that interleave with progress never give up on a
    recovery that is still moving."""
    pool = RunnerPool()
    h = Harness(['ACTIVE'], 'on', manual=False, rebuild_polls=0)
    record = h.store.get_recovery(HOST)
    from freezer_dr.engine import runners
    runner = runners.RecoveryRunner(None, record)
    point = runners.progress(record)
    pool._errors[HOST] = runners.StepErrors(point, MAX_STEP_ERRORS - 1, 0)
    record.steps.append({'step': 'confirmed', 'note': 'moved'})
    assert runners.progress(record) != point

    class Ctx:
        stop = h.stop
    runner.ctx = Ctx()
    pool._step_error(runner, exceptions.CloudUnavailable('HTTP 500'))
    assert pool._errors[HOST].count == 1


def test_a_failing_step_is_retried_within_seconds_and_given_up_late(
        monkeypatch):
    """CI: five unlucky Nova answers in a row held a fenced host's
    instances down for 155 s (5 s doubling to 120 s). Retries now start
    at 2 s and are at most 30 s apart; giving up still takes minutes."""
    from freezer_dr.engine import runners
    clock = [1000.0]
    monkeypatch.setattr(runners, 'now', lambda: clock[0])
    pool = RunnerPool()
    h = Harness(['ACTIVE'], 'on', manual=False, rebuild_polls=0)
    runner = runners.RecoveryRunner(None, h.store.get_recovery(HOST))

    class Ctx:
        stop = h.stop
    runner.ctx = Ctx()
    gaps = []
    for _ in range(MAX_STEP_ERRORS - 1):      # the last one gives up
        pool._step_error(runner, exceptions.CloudUnavailable('HTTP 500'))
        gaps.append(pool._errors[HOST].retry_at - clock[0])
        clock[0] += gaps[-1]
    assert gaps[0] <= 2.0 and max(gaps) <= 30.0, gaps
    assert sum(gaps[:4]) <= 30.0, gaps        # four 500s cost seconds
    assert 90.0 <= sum(gaps) <= 180.0, gaps   # a bad minute is ridden out
    assert alerts(h, 'stuck') == []


def test_cancel_before_fencing_closes_it_and_tells_admins_only():
    """Issue 9: an operator cancels a held recovery; nothing is fenced,
    it ends failed with the reason, admins get one mail."""
    h = Harness(['ACTIVE'], 'on', manual=True, rebuild_polls=0)
    h.world.bmc_mode = 'unreachable'
    h.run()
    assert step(h) == Step.HELD
    h.store.request('cancel', HOST, {'recovery_id': 'r1', 'by': 'alice',
                                     'reason': 'host is being replaced'})
    h.run()
    ended = h.store.find('r1')
    assert ended.step == Step.FAILED
    assert ended.reason == 'cancelled by alice: host is being replaced'
    assert [e['mail_kind'] for e in h.world.events('mail')] == [
        'fence_failed', 'cancelled']
    assert h.world.events('bmc_off') == [] == h.world.events('evacuate')


def test_cancel_after_a_verified_power_off_is_refused():
    h = Harness(['ACTIVE'], 'on', manual=False, rebuild_polls=50)
    h.lease.lose_at = 12                       # stop after the fence
    h.run()
    record = h.store.get_recovery(HOST)
    assert record.fence and record.fence['success']
    h.store.request('cancel', HOST, {'recovery_id': 'r1', 'by': 'alice',
                                     'reason': 'too late'})
    h.new_term()
    h.run()
    ended = h.store.find('r1')
    assert ended.step == Step.DONE and 'cancelled' not in ended.reason
    assert h.store.requests('cancel') == {}


@pytest.mark.parametrize('lose_after', range(1, 12))
def test_an_interrupted_attempt_leaves_no_confirmation_behind(lose_after):
    """Review (critical, S1): the BMC reads the host ON, then the lease
    runs out before anything is checkpointed; the next leader, with the
    BMC unreachable again, must not use the older confirmation."""
    h = Harness(['ACTIVE'], 'on', manual=True, rebuild_polls=0)
    h.world.bmc_mode = 'unreachable'
    h.run()
    assert step(h) == Step.HELD
    h.confirm()                          # wrong: the host runs
    h.world.bmc_mode = 'ok'
    h.lease.lose_at = h.lease.checks + lose_after
    h.run()
    h.new_term()
    h.world.bmc_mode = 'unreachable'
    h.run()
    # no isolation unless an OFF reading (after an off command) is newer
    # than the ON reading: the operator's older word counts for nothing
    assert check_fenced(h.world) == []


def test_a_readiness_reading_on_refuses_an_older_confirmation():
    """Review (S1): the readiness checker reads the host ON after the
    operator confirmed it off; the confirmation is refused and alerted."""
    h = Harness(['ACTIVE'], 'on', manual=True, rebuild_polls=0)
    h.world.bmc_mode = 'wrong-password'
    h.run()
    h.confirm()
    h.cycle()                            # accepted into the record
    h.world.bmc_mode = 'ok'
    h.readiness_check()                  # reads ON: stored after it
    h.world.bmc_mode = 'wrong-password'
    h.run()
    assert step(h) == Step.HELD and h.world.events('isolate') == []
    assert alerts(h, 'confirmation_refused')


def test_a_distrusted_level_is_never_used_as_evidence():
    """Review (S1): a level the readiness check flagged as a likely
    inventory mistake (reads OFF while the host heartbeats) is skipped."""
    world = fakes.World(power='off')     # "its" BMC is another machine's
    lease = fakes.FakeLease(world, threading.Event())
    level = fakes.FakeBmcFencer(HOST, world, lambda: lease)
    result = fencing.fence_node(HOST, [level], 1.0,
                                distrusted={1: 'inventory mistake?'})
    assert not result.success and 'inventory mistake?' in result.detail
    assert fencing.fence_node(HOST, [level], 1.0).success


def test_a_level_reading_off_without_a_command_after_an_on_reading():
    """Review (S1): within one attempt, a later level that only reads the
    host OFF does not outweigh an earlier level that read it ON."""
    on_world, off_world = fakes.World(power='on'), fakes.World(power='off')
    on_world.bmc_mode = 'stuck'
    lease = fakes.FakeLease(on_world, threading.Event())
    levels = [fakes.FakeBmcFencer(HOST, on_world, lambda: lease),
              fakes.FakeBmcFencer(HOST, off_world, lambda: lease)]
    result = fencing.fence_node(HOST, levels, 1.0)
    assert not result.success and 'contradictory' in result.detail


def test_a_notifier_bug_never_blocks_the_recovery():
    """Review (S4): an alert the notifier fails on with a bug (not
    NotifyFailed) stays queued; the host is fenced and recovered and the
    users are told."""
    class BuggyMailer(fakes.FakeMailer):
        def send(self, event, key):
            if event.kind == 'fence_failed':
                raise UnicodeEncodeError('ascii', 'x', 0, 1, 'a bug')
            super().send(event, key)

    h = Harness(['ACTIVE'], 'on', manual=False, rebuild_polls=0)
    h.mailer = BuggyMailer(h.world, lambda: h.lease)
    h.world.bmc_mode = 'unreachable'
    h.run()
    h.world.bmc_mode = 'ok'
    for _ in range(12):
        h.run()
    ended = h.store.find('r1')
    assert ended is not None and ended.terminal
    assert [e['mail_kind'] for e in h.world.events('mail')] == ['recovered']
    assert h.world.events('bmc_off')


def test_giving_up_is_retried_when_the_give_up_write_fails():
    """Review (S4): an etcd blip at the sixth error does not leave the
    recovery retrying forever without an end or an alert."""
    h = Harness(['ACTIVE'], 'on', manual=False, rebuild_polls=0)
    h.nova.errors = 10 ** 6                  # isolation keeps failing
    for n in range(1, 12):
        if n == MAX_STEP_ERRORS:
            h.store.fail_writes = 1
        h.run()
    ended = h.store.find('r1')
    assert ended is not None and ended.step == Step.FAILED
    assert 'isolating failed' in ended.reason
