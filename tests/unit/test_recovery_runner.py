"""The recovery runner against the in-memory world: the review's defects
in retries, cancels, evacuation and notification.

Each test names the defect of issue 7 it guards against; the invariants
are checked from the world's log (BMC, Nova, mailbox), as in the property
tests, which share the harness (``tests/unit/harness.py``).
"""
from __future__ import annotations

import pytest

from freezer_dr import exceptions
from freezer_dr.engine.runners import MAX_STEP_ERRORS
from freezer_dr.engine.runners import RunnerPool
from freezer_dr.model import InstanceState
from freezer_dr.model import Step
from tests.unit import fakes
from tests.unit.harness import HOST
from tests.unit.harness import Harness
from tests.unit.harness import alerts
from tests.unit.harness import check_ended
from tests.unit.harness import invariants
from tests.unit.harness import settle
from tests.unit.harness import step


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
