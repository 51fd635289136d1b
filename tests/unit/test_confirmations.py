"""Operator fence confirmations against the in-memory world (S1): when
one counts, and when it must not."""
from __future__ import annotations

from freezer_dr.engine import operator_requests
from freezer_dr.model import Step
from tests.unit.harness import HOST
from tests.unit.harness import Harness
from tests.unit.test_recovery_runner import invariants
from tests.unit.test_recovery_runner import step


def test_a_confirmation_written_before_an_on_reading_is_ignored():
    """S1: a fencing retry that read the host ON after the operator's
    confirmation was written (before the leader read it) voids it."""
    h = Harness(['ACTIVE'], 'on', manual=True, rebuild_polls=0)
    h.world.bmc_mode = 'unreachable'
    h.run()
    h.confirm()
    h.world.bmc_mode = 'stuck'                   # reads ON, never off
    h.run(requests=False)
    h.run()
    h.run()
    assert step(h) == Step.HELD
    assert h.world.events('evacuate') == []
    assert invariants(h) == []


def test_a_confirmation_during_a_cut_short_attempt_is_ignored():
    """S1: a record left at fencing with no runner is an attempt cut short
    by a takeover; what it read (perhaps ON, after the operator wrote) is
    not in the record, so the confirmation is not taken."""
    h = Harness(['ACTIVE'], 'on', manual=True, rebuild_polls=0)
    record = h.store.get_recovery(HOST)
    record.step = Step.FENCING
    h.store.put_recovery(record)
    h.confirm()
    h.cycle()
    assert h.store.get_recovery(HOST).operator_confirmation is None
    assert h.store.requests('fence-confirmed') == {}


def test_a_refused_confirmation_is_told_to_the_admins():
    """Review: a refused confirmation was only logged, and the operator
    believed it taken; the admins now hear to confirm again."""
    h = Harness(['ACTIVE'], 'on', manual=True, rebuild_polls=0)
    record = h.store.get_recovery(HOST)
    record.step = Step.FENCING
    h.store.put_recovery(record)
    h.confirm()
    live = {r.host: r for r in h.store.recoveries()}
    [(kind, said)] = operator_requests.handle(h.store, live, set())
    assert kind == 'confirmation_ignored'
    assert HOST in said and 'confirm again' in said
    h.confirm()                                  # written before a change
    record = h.store.get_recovery(HOST)
    record.step = Step.HELD
    h.store.put_recovery(record)
    live = {r.host: r for r in h.store.recoveries()}
    [(kind, said)] = operator_requests.handle(h.store, live, set())
    assert kind == 'confirmation_ignored' and 'last changed' in said
