"""The recovery runner's fencing against the in-memory world: operator
confirmations, the level walk, and an attempt cut short.

Each test names the defect of issue 7 it guards against; the invariants
are checked from the world's log (BMC, Nova, mailbox), never the record.
"""
from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from freezer_dr import exceptions
from freezer_dr.engine import fencing
from freezer_dr.fencers.base import Fencer
from freezer_dr.model import Step
from tests.unit import fakes
from tests.unit.harness import HOST
from tests.unit.harness import Harness
from tests.unit.harness import alerts
from tests.unit.harness import check_fenced
from tests.unit.harness import invariants
from tests.unit.harness import step


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
