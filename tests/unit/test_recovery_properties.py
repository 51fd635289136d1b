"""Property-based tests: the recovery runner under random events and faults.

Hypothesis drives one host's recovery through random sequences of: runner
runs, BMC modes (ok, unreachable, stuck, wrong password), the host powered
on behind our back, lease loss at any call, takeovers by a new epoch, Nova
errors (before and after the request reached Nova), etcd write errors,
undeliverable mail, gates opening and closing, the host coming back, and
operator requests (confirm a manual fence, retry, cancel). The invariants
are checked from the world's log (the BMC, Nova and the mailbox), never
from the record:

- no isolate or evacuate without a verified power-off (an "off" reading,
  or an accepted operator confirmation) newer than the last ON reading;
- no side effect without a valid lease;
- each instance at most one evacuation per attempt, never one Nova refuses
  because another is under way or the server already moved;
- every sequence ends terminal, or held with an admin alert.
"""
from __future__ import annotations

import hypothesis
from hypothesis import strategies as st

from tests.unit.harness import HOST
from tests.unit.harness import Harness
from tests.unit.harness import check_ended
from tests.unit.harness import check_evacuations
from tests.unit.harness import check_fenced
from tests.unit.harness import check_lease
from tests.unit.harness import settle

EVENTS = st.one_of(
    st.just(('run',)),
    st.tuples(st.just('bmc'), st.sampled_from(
        ['ok', 'unreachable', 'stuck', 'wrong-password'])),
    st.just(('power_on',)),
    st.tuples(st.just('lose_lease'), st.integers(1, 40)),
    st.just(('takeover',)),
    st.tuples(st.just('nova_errors'), st.integers(1, 4)),
    st.tuples(st.just('nova_lost_replies'), st.integers(1, 3)),
    st.tuples(st.just('etcd_errors'), st.integers(1, 3)),
    st.tuples(st.just('mail_failures'), st.integers(1, 3)),
    st.tuples(st.just('gate'), st.sampled_from([None, 'paused',
                                                'storm guard'])),
    st.tuples(st.just('host_down'), st.sampled_from([True, False, None])),
    st.just(('confirm',)),
    st.just(('retry',)),
    st.just(('cancel',)),
    st.just(('readiness',)),
)



def apply(h: Harness, event: tuple) -> None:
    kind = event[0]
    if kind == 'run':
        h.run()
    elif kind == 'bmc':
        h.world.bmc_mode = event[1]
    elif kind == 'power_on':
        h.world.power = 'on'
        h.world.record('powered_on')
    elif kind == 'lose_lease':
        h.lease.lose_at = h.lease.checks + event[1]
    elif kind == 'takeover':
        h.new_term()
    elif kind == 'nova_errors':
        h.nova.errors = event[1]
    elif kind == 'nova_lost_replies':
        h.nova.lost_replies = event[1]
    elif kind == 'etcd_errors':
        h.store.fail_writes = event[1]
    elif kind == 'mail_failures':
        h.mailer.failures = event[1]
    elif kind == 'gate':
        h.hold = event[1]
    elif kind == 'host_down':
        h.host_down = event[1]
    elif kind == 'confirm':
        h.confirm()
    elif kind == 'retry':
        h.retry()
    elif kind == 'readiness':
        h.readiness_check()
    elif kind == 'cancel':
        h.store.request('cancel', HOST, {'recovery_id': 'r1', 'by': 'ops',
                                         'reason': 'chaos'})


@hypothesis.settings(max_examples=300, deadline=None,
                     suppress_health_check=[
                         hypothesis.HealthCheck.too_slow])
@hypothesis.given(
    statuses=st.lists(st.sampled_from(['ACTIVE', 'SHUTOFF', 'ERROR']),
                      min_size=0, max_size=3),
    power=st.sampled_from(['on', 'off']),
    manual=st.booleans(),
    rebuild_polls=st.integers(0, 3),
    events=st.lists(EVENTS, min_size=1, max_size=25))
def test_no_sequence_of_events_breaks_an_invariant(statuses, power, manual,
                                                    rebuild_polls, events):
    h = Harness(statuses, power, manual, rebuild_polls)
    for event in events:
        apply(h, event)
    settle(h)
    problems = (check_lease(h.world) + check_fenced(h.world)
                + check_evacuations(h.world, h) + check_ended(h))
    assert problems == [], '\n'.join(problems)
