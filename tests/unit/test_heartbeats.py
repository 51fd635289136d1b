"""Missed heartbeats, learned per host (issue 10): one test per rule."""
from __future__ import annotations

import datetime
import time

import pytest

from freezer_dr import exceptions
from freezer_dr.engine import gates
from freezer_dr.engine import heartbeats
from freezer_dr.engine import observe
from freezer_dr.model import HostObservation

POLICY = heartbeats.HeartbeatPolicy(missed_heartbeats=3, report_interval=10)
EPOCH = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)


def obs(host: str, beat: float, state: str = 'up') -> HostObservation:
    """``host`` whose last heartbeat was at Nova time ``beat`` s."""
    stamp = (EPOCH + datetime.timedelta(seconds=beat)).isoformat()
    return HostObservation(host=host, state=state, updated_at=stamp)


def test_the_period_is_learned_from_updated_at_changes():
    tracker = heartbeats.HeartbeatTracker(POLICY)
    for i, beat in enumerate((0, 4, 8, 12)):
        silences = tracker.observe([obs('c1', beat)], mono=100.0 + 4 * i)
    assert silences['c1'].period == 4.0 and silences['c1'].learned


def test_conductors_whose_clocks_disagree_never_shorten_the_period():
    """Review: heartbeats every 10 s written in turn by two conductors,
    one 4 s behind, gave stamp intervals of 6, 14 and 10 s whose median
    was 8 s: a heartbeat 15 s late (a 25 s gap) made three missed. Our
    own clock between placed heartbeats keeps each interval honest."""
    tracker = heartbeats.HeartbeatTracker(POLICY)
    behind = {2: 4.0, 4: 4.0, 6: 4.0, 7: 4.0}   # which beats B wrote
    mono = 1000.0
    for i in range(8):                  # beats at 0, 10, ... 70
        stamp = 10.0 * i - behind.get(i, 0.0)
        # looks every second; the first to show beat i is 0.3 s after it
        tracker.observe([obs('c1', stamp)], mono=mono + 10.0 * i + 0.3,
                        asked=mono + 10.0 * i + 0.2)
        tracker.observe([obs('c1', stamp)], mono=mono + 10.0 * i + 9.3,
                        asked=mono + 10.0 * i + 9.2)
    # our clock places a heartbeat to within one look (1 s here)
    assert tracker.period('c1') >= 9.0
    # the next heartbeat is 15 s late: due at 80, it comes at 95
    silence = tracker.observe([obs('c1', 70.0)], mono=mono + 94.9,
                              asked=mono + 94.8)['c1']
    assert silence.missed < POLICY.missed_heartbeats


def test_until_learned_the_report_interval_stands_in():
    tracker = heartbeats.HeartbeatTracker(POLICY)
    silence = tracker.observe([obs('c1', 0)], mono=100.0)['c1']
    assert silence.period == 10.0 and not silence.learned


def test_silence_counts_on_the_leaders_clock_from_the_last_change():
    tracker = heartbeats.HeartbeatTracker(POLICY)
    for i, beat in enumerate((0, 10, 20)):
        tracker.observe([obs('c1', beat)], mono=100.0 + 10 * i)
    # Nova's clock is never compared with ours: skew changes nothing
    silence = tracker.observe([obs('c1', 20)], mono=145.0)['c1']
    assert silence.seconds == 25.0 and silence.missed == 2.5
    silent = heartbeats.silent_hosts([obs('c1', 20)], {'c1': silence},
                                     POLICY)
    assert silent == {}
    silence = tracker.observe([obs('c1', 20)], mono=151.0)['c1']
    assert heartbeats.silent_hosts([obs('c1', 20)], {'c1': silence},
                                   POLICY) == {'c1': silence}


def test_a_heartbeat_is_placed_by_the_stamps_not_by_the_look_that_saw_it():
    """Issue 10 (crash to recovered): the look that shows a heartbeat
    comes up to a poll later; counting from it delays every detection.
    Nova's clock runs 1000 s behind ours here: only differences count."""
    tracker = heartbeats.HeartbeatTracker(POLICY)
    skew = 1000.0
    # c2 beat at 0.9 and the look at 1.0 showed it: offset bound 0.1 s
    tracker.observe([obs('c1', 0.0), obs('c2', -9.1)], mono=skew + 0.2,
                    asked=skew)
    tracker.observe([obs('c1', 0.0), obs('c2', 0.9)], mono=skew + 1.0,
                    asked=skew + 0.8)
    # c1 beat at 10.0; the looks were at 9.8 (not shown) and 10.9 (shown)
    tracker.observe([obs('c1', 0.0), obs('c2', 0.9)], mono=skew + 9.8,
                    asked=skew + 9.6)
    tracker.observe([obs('c1', 10.0), obs('c2', 0.9)], mono=skew + 10.9,
                    asked=skew + 10.7)
    silence = tracker.observe([obs('c1', 10.0), obs('c2', 10.9)],
                              mono=skew + 40.2, asked=skew + 40.0)['c1']
    # truth 30.0 s when the look was sent (the bound is 0.1 s loose);
    # counting from the look that showed it gave 29.1 s
    assert silence.seconds == pytest.approx(29.9)


def test_a_slow_answer_adds_nothing_to_a_silence():
    """Review: a silence was counted up to when the look's answer came
    back, so a Nova API taking 8 s to answer made every host look 8 s
    quieter than the answer proves. It counts up to when it was sent."""
    tracker = heartbeats.HeartbeatTracker(POLICY)
    for i, beat in enumerate((0, 10, 20)):
        tracker.observe([obs('c1', beat)], mono=100.0 + 10 * i)
    silence = tracker.observe([obs('c1', 20)], mono=148.0,
                              asked=140.0)['c1']
    assert silence.seconds == 20.0 and silence.missed == 2.0


def test_a_placed_heartbeat_stays_between_the_two_looks():
    """Stamps from a clock that jumped (or conductors that disagree)
    never place a heartbeat before the look that did not yet show it,
    nor after the look that showed it."""
    tracker = heartbeats.HeartbeatTracker(POLICY)
    tracker.observe([obs('c1', 0.0), obs('c2', 0.0)], mono=100.0,
                    asked=99.9)
    tracker.observe([obs('c1', 0.0), obs('c2', 50.0)], mono=105.0,
                    asked=104.9)     # c2's stamp is 45 s ahead of ours
    tracker.observe([obs('c1', 0.0), obs('c2', 50.0)], mono=109.6,
                    asked=109.5)
    silence = tracker.observe([obs('c1', 10.0), obs('c2', 50.0)],
                              mono=110.0, asked=109.8)['c1']
    assert silence.seconds == pytest.approx(109.8 - 109.5)
    tracker = heartbeats.HeartbeatTracker(POLICY)
    tracker.observe([obs('c1', 0.0)], mono=100.0, asked=99.9)
    silence = tracker.observe([obs('c1', 500.0)], mono=105.0,
                              asked=104.9)['c1']   # stamp far ahead
    assert silence.seconds == 0.0


def test_a_gap_in_the_looks_never_places_a_heartbeat_far_back():
    """Review: with no look for 30 s (Nova down) the two looks around a
    heartbeat are far apart, and stamps from a conductor whose clock is
    7 s behind placed it 7 s early: a host 15 s late reached three missed
    heartbeats. It is never placed more than MAX_EARLY early."""
    tracker = heartbeats.HeartbeatTracker(POLICY)
    # conductor A (on time) sets the offset: c2 shown 0.1 s after it beat
    tracker.observe([obs('c1', 90.0), obs('c2', 99.9)], mono=100.0,
                    asked=99.8)
    # Nova unreachable from 100 to 130; c1 beat at 125 through conductor
    # B, whose clock is 7 s behind (stamp 118)
    tracker.observe([obs('c1', 118.0), obs('c2', 129.9)], mono=130.0,
                    asked=129.8)
    # its next heartbeat is 15 s late (due 135, comes at 150)
    silence = tracker.observe([obs('c1', 118.0), obs('c2', 149.0)],
                              mono=149.2, asked=149.0)['c1']
    assert silence.seconds <= 149.2 - 125.0 + heartbeats.MAX_EARLY
    assert silence.missed < POLICY.missed_heartbeats


def test_the_next_look_is_due_when_a_quiet_host_reaches_its_beats():
    tracker = heartbeats.HeartbeatTracker(POLICY)
    tracker.observe([obs('c1', 0.0), obs('c2', 5.0)], mono=100.0)
    assert tracker.due(['c1', 'c2']) == 130.0
    assert tracker.due(['c2']) == 130.0
    assert tracker.due([]) is None


def test_a_late_heartbeat_that_arrives_resets_the_silence():
    tracker = heartbeats.HeartbeatTracker(POLICY)
    tracker.observe([obs('c1', 0)], mono=100.0)
    tracker.observe([obs('c1', 10)], mono=110.0)
    tracker.observe([obs('c1', 10)], mono=134.0)         # 24 s, 15 late
    silence = tracker.observe([obs('c1', 35)], mono=135.0)['c1']
    assert silence.seconds == 0.0


def test_a_new_leader_counts_silence_from_its_first_look():
    tracker = heartbeats.HeartbeatTracker(POLICY)
    tracker.observe([obs('c1', 0)], mono=100.0)
    tracker.forget()                                      # a takeover
    silence = tracker.observe([obs('c1', 0)], mono=500.0)['c1']
    assert silence.seconds == 0.0


def test_hosts_nova_already_calls_down_are_not_counted_twice():
    tracker = heartbeats.HeartbeatTracker(POLICY)
    tracker.observe([obs('c1', 0, 'down')], mono=100.0)
    silences = tracker.observe([obs('c1', 0, 'down')], mono=200.0)
    assert heartbeats.silent_hosts([obs('c1', 0, 'down')], silences,
                                   POLICY) == {}


class Monitor:
    def __init__(self):
        self.answer = []

    def hosts(self):
        return list(self.answer)


STORM = gates.StormPolicy(3, 30.0)


def watch():
    return observe.HostWatch(observe.WatchSettings(
        STORM, confirm_window=0.0, observe_gap=30.0,
        heartbeats=heartbeats.HeartbeatPolicy(3, 0.05)))


def test_a_silent_host_is_marked_down_with_its_evidence():
    w, monitor = watch(), Monitor()
    monitor.answer = [obs(f'c{i}', 0) for i in range(10)]
    w.look(monitor, 0)
    time.sleep(0.2)                                      # > 3 x 0.05 s
    monitor.answer = [obs('c1', 0)] + [obs(f'c{i}', 5) for i in range(2, 10)]
    [c1] = [o for o in w.look(monitor, 10).hosts if o.host == 'c1']
    assert c1.is_down and c1.state == 'up'
    assert c1.evidence['missed_heartbeats'] >= 3


def test_many_silent_hosts_at_once_are_blindness_not_a_storm():
    w, monitor = watch(), Monitor()
    monitor.answer = [obs(f'c{i}', 0) for i in range(10)]
    w.look(monitor, 0)
    time.sleep(0.2)
    with pytest.raises(exceptions.MonitorUnavailable,
                       match='heartbeats stopped on 10 of 10 hosts'):
        w.look(monitor, 10)


@pytest.mark.parametrize('seed,hosts,poll', [(1, 12, 2.0), (2, 60, 0.5),
                                             (3, 12, 2.0), (4, 100, 2.0)])
def test_a_stall_is_blindness_before_any_host_is_confirmed(
        monkeypatch, seed, hosts, poll):
    """Review (S5): every heartbeat stops at once (a stalled bus); hosts
    cross the missed-heartbeat line in the order of their phase, a few a
    look. The stall must be called blindness before the first one is
    confirmed (window 0), whatever the phases, size and poll interval."""
    import random
    clock = [0.0]
    monkeypatch.setattr(observe.time, 'monotonic', lambda: clock[0])
    rng = random.Random(seed)
    phase = {f'c{i}': rng.uniform(0, 10) for i in range(hosts)}
    stall = 100.0

    class Stalled:
        def hosts(self):
            t = min(clock[0], stall)
            return [obs(h, p + 10 * int((t - p) // 10))
                    for h, p in phase.items()]

    w = observe.HostWatch(observe.WatchSettings(
        STORM, 0.0, 14.0, heartbeats.HeartbeatPolicy(3, 10.0)))
    previous, looked, opened = {}, {}, []
    while clock[0] < 160:
        try:
            look = w.look(Stalled(), hosts)
        except exceptions.MonitorUnavailable as error:
            assert 'heartbeats stopped' in str(error)
            break
        previous, looked = gates.track_suspects(
            look.hosts, previous, set(opened), looked, clock[0], clock[0],
            14.0)
        opened += gates.decide(look.hosts, previous, set(opened),
                               len(opened), 0.0, STORM, 2).start
        clock[0] += poll
    else:
        raise AssertionError('the stall was never called blindness')
    assert opened == []


@pytest.mark.parametrize('seed,hosts,poll', [(1, 4, 1.0), (2, 4, 1.0),
                                             (3, 12, 2.0), (4, 60, 0.5)])
def test_hosts_resuming_after_a_stall_are_not_failed_hosts(
        monkeypatch, seed, hosts, poll):
    """Issue 10 (the production-timings benchmark fenced one of 4 hosts):
    after a 90 s stall the hosts resume in the order of their heartbeat
    phase; once enough have resumed the stall is over, and the last ones,
    still quiet from it, looked like failed hosts. Their silence now counts
    from the end of the stall."""
    import random
    clock = [0.0]
    monkeypatch.setattr(observe.time, 'monotonic', lambda: clock[0])
    rng = random.Random(seed)
    phase = {f'c{i}': rng.uniform(0, 10) for i in range(hosts)}
    stall, resume = 100.0, 190.0

    def last_beat(p: float, t: float) -> float:
        return p + 10 * ((t - p) // 10)

    class StalledThenBack:
        def hosts(self):
            t = clock[0]
            return [obs(h, max(last_beat(p, min(t, stall)),
                               last_beat(p, t) if last_beat(p, t) >= resume
                               else 0))
                    for h, p in phase.items()]

    w = observe.HostWatch(observe.WatchSettings(
        STORM, 0.0, 14.0, heartbeats.HeartbeatPolicy(3, 10.0)))
    previous, looked, opened, blind = {}, {}, [], 0
    while clock[0] < 300:
        try:
            look = w.look(StalledThenBack(), hosts)
        except exceptions.MonitorUnavailable as error:
            assert 'heartbeats stopped' in str(error)
            blind += 1
        else:
            previous, looked = gates.track_suspects(
                look.hosts, previous, set(opened), looked, clock[0],
                clock[0], 14.0)
            opened += gates.decide(look.hosts, previous, set(opened),
                                   len(opened), 0.0, STORM, 2).start
        clock[0] += poll
    assert blind                       # the stall was seen as blindness
    assert opened == []


class OffBmc:
    """A power-reading level that reads the host OFF (never a command)."""
    operator_confirmed = False
    driver = 'fake'
    host = 'c1'

    def power_state(self, deadline):
        from freezer_dr.model import PowerState
        return PowerState.OFF


def test_a_quiet_host_its_bmc_reads_off_is_down_before_three_beats():
    """Issue 10: evidence that settles it shortens the wait: a host one
    beat quiet whose BMC reads it OFF is down, long before three missed
    heartbeats (a power loss is recovered in seconds, not half a minute)."""
    w, monitor = watch(), Monitor()
    monitor.answer = [obs(f'c{i}', 0) for i in range(10)]
    w.look(monitor, 0)
    time.sleep(0.07)                        # 1.4 beats of 0.05 s: quiet
    monitor.answer = [obs('c1', 0)] + [obs(f'c{i}', 5) for i in range(2, 10)]
    levels = lambda host: [OffBmc()]        # noqa: E731
    w.look(monitor, 10, levels, lambda host: True)      # read started
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        look = w.look(monitor, 10, levels, lambda host: True)
        if look.off:
            break
        time.sleep(0.01)
    [c1] = [o for o in look.hosts if o.host == 'c1']
    assert look.off == {'c1'} and c1.is_down and c1.evidence['bmc_off']


def test_an_unvouched_bmc_never_settles_it():
    w, monitor = watch(), Monitor()
    monitor.answer = [obs(f'c{i}', 0) for i in range(10)]
    w.look(monitor, 0)
    time.sleep(0.07)
    levels = lambda host: [OffBmc()]        # noqa: E731
    for beat in range(1, 21):              # the others keep beating
        monitor.answer = [obs('c1', 0)] + [obs(f'c{i}', beat)
                                           for i in range(2, 10)]
        look = w.look(monitor, 10, levels, lambda host: False)
        time.sleep(0.01)
    assert look.off == frozenset()


@pytest.mark.parametrize('due,pause', [
    (None, 1.0),          # nobody quiet: a poll interval after the start
    (100.4, 0.4),         # a quiet host due before then: look right then
    (99.5, 1.0),          # due before this cycle began: it was seen
    (107.0, 1.0),         # due after the next poll anyway
])
def test_the_leader_looks_again_when_a_quiet_host_becomes_due(
        monkeypatch, due, pause):
    monkeypatch.setattr(observe.time, 'monotonic', lambda: 100.0)
    assert observe.pause(100.0, 1.0, due) == pytest.approx(pause)


def test_a_cycle_that_did_not_overrun_keeps_the_interval(monkeypatch):
    """Review: a 0.7 s cycle of a 1 s interval rested 0.5 s (1.2 s from
    start to start), not the 0.3 s that keeps the interval."""
    monkeypatch.setattr(observe.time, 'monotonic', lambda: 100.7)
    assert observe.pause(100.0, 1.0, None) == pytest.approx(0.3)


def test_a_cycle_that_overran_is_followed_by_half_an_interval(
        monkeypatch):
    """Review: a slow Nova (4 s list calls) must not be asked again at
    once, cycle after cycle."""
    monkeypatch.setattr(observe.time, 'monotonic', lambda: 105.0)
    assert observe.pause(100.0, 1.0, None) == 0.5
    assert observe.pause(100.0, 1.0, 99.0) == 0.5
