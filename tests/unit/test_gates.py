"""The safety gates, one test per branch."""
from freezer_dr.engine import gates
from freezer_dr.model import HostObservation

POLICY = gates.StormPolicy(max_failed_hosts=3, max_failed_percent=30.0)


def hosts(n, down=(), disabled=(), forced=()):
    return [HostObservation(
        host=f'c{i}', state='down' if f'c{i}' in down else 'up',
        status='disabled' if f'c{i}' in disabled else 'enabled',
        forced_down=f'c{i}' in forced) for i in range(1, n + 1)]


def decide(obs, suspects, live=(), active=0, window=15.0,
           parallel=2, policy=POLICY):
    return gates.decide(obs, suspects, set(live), active, window,
                        policy, parallel)


def watched(**hosts):
    """Suspects as track_suspects returns them: host -> watched seconds."""
    return {h: {'watched': float(w), 'seen': 1000.0}
            for h, w in hosts.items()}


GAP = 10.0


def track(obs, previous, busy=(), looked=None, mono=500.0, wall=1000.0):
    return gates.track_suspects(obs, previous, set(busy), looked or {},
                                mono, wall, GAP)


def test_first_sighting_starts_the_confirmation_window():
    suspects, looked = track(hosts(10, down={'c3'}), {})
    assert suspects == {'c3': {'watched': 0.0, 'seen': 1000.0}}
    assert looked == {'c3': 500.0}


def test_watched_time_grows_by_this_leaders_own_clock():
    previous = {'c3': {'watched': 4.0, 'seen': 990.0}}
    suspects, _ = track(hosts(10, down={'c3'}), previous,
                        looked={'c3': 497.0})
    assert suspects['c3']['watched'] == 7.0


def test_a_host_seen_up_again_drops_out_of_the_suspects():
    suspects, looked = track(hosts(10), watched(c3=8))
    assert suspects == {} and looked == {}


def test_disabled_or_forced_down_hosts_are_never_suspects():
    obs = hosts(10, down={'c3', 'c4'}, disabled={'c3'}, forced={'c4'})
    assert track(obs, {})[0] == {}


def test_hosts_under_recovery_are_not_suspects_again():
    assert track(hosts(10, down={'c3'}), {}, busy={'c3'})[0] == {}


def test_unknown_hosts_are_never_suspects():
    obs = hosts(10)
    obs[2] = HostObservation(host='c3', state='unknown', down=True)
    assert track(obs, watched(c3=14))[0] == {}


def test_a_gap_in_watching_restarts_the_window():
    """Issue 7, defect 5: after a leaderless gap longer than the gap
    limit, a former suspect is not fenced on the first look."""
    previous = {'c3': {'watched': 14.0, 'seen': 1000.0 - 3600}}
    suspects, _ = track(hosts(10, down={'c3'}), previous)
    assert suspects['c3']['watched'] == 0.0
    d = decide(hosts(10, down={'c3'}), suspects)
    assert d.start == ()


def test_a_slow_look_by_the_same_leader_restarts_the_window():
    previous = {'c3': {'watched': 14.0, 'seen': 1000.0}}
    suspects, _ = track(hosts(10, down={'c3'}), previous,
                        looked={'c3': 500.0 - GAP - 1})
    assert suspects['c3']['watched'] == 0.0


def test_a_quick_takeover_keeps_the_watched_time_but_adds_no_gap():
    previous = {'c3': {'watched': 9.0, 'seen': 995.0}}
    suspects, _ = track(hosts(10, down={'c3'}), previous)   # new leader
    assert suspects['c3']['watched'] == 9.0


def test_clock_skew_between_leaders_never_adds_watched_time():
    """A predecessor whose wall clock ran ahead or behind: its watched
    seconds are kept only when its last look is within the gap limit
    either way, and never grow by the skew."""
    for skew in (-GAP + 1, GAP - 1):
        previous = {'c3': {'watched': 5.0, 'seen': 1000.0 + skew}}
        assert track(hosts(10, down={'c3'}),
                     previous)[0]['c3']['watched'] == 5.0
    for skew in (-GAP - 1, GAP + 1, 3600):
        previous = {'c3': {'watched': 5.0, 'seen': 1000.0 + skew}}
        assert track(hosts(10, down={'c3'}),
                     previous)[0]['c3']['watched'] == 0.0


def test_host_inside_its_window_waits_and_says_how_long():
    d = decide(hosts(10, down={'c3'}), watched(c3=12))
    assert d.start == () and not d.storm
    assert d.sentences == (
        'host c3 down 12 s of 15 s confirmation window',)


def test_host_past_its_window_starts():
    d = decide(hosts(10, down={'c3'}), watched(c3=20))
    assert d.start == ('c3',)
    assert d.sentences == ('host c3 confirmed down: starting recovery',)


def test_storm_by_percent_holds_everything():
    obs = hosts(10, down={'c1', 'c2', 'c3', 'c4'})
    suspects = watched(c1=0, c2=0, c3=0, c4=0)
    d = decide(obs, suspects, policy=gates.StormPolicy(10, 30.0))
    assert d.storm and d.start == ()
    assert d.sentences == (
        'storm guard: 4 of 10 hosts down (40 %, > 30 %): holding',)


def test_storm_by_count_holds_everything():
    obs = hosts(100, down={'c1', 'c2', 'c3', 'c4'})
    suspects = watched(c1=0, c2=0, c3=0, c4=0)
    d = decide(obs, suspects)
    assert d.storm and d.start == ()
    assert d.sentences[0].startswith('storm guard: 4 of 100 hosts down')


def test_live_recoveries_count_towards_the_storm():
    obs = hosts(10, down={'c1', 'c2'})
    d = decide(obs, watched(c2=0), live={'c5', 'c6', 'c7'}, active=3)
    assert d.storm


def test_hosts_out_of_service_do_not_count_towards_the_storm():
    obs = hosts(10, down={'c1', 'c2', 'c3', 'c4'},
                forced={'c1', 'c2', 'c3'})
    d = decide(obs, watched(c4=20))
    assert not d.storm and d.start == ('c4',)


def test_parallel_limit_leaves_confirmed_hosts_waiting():
    obs = hosts(20, down={'c1', 'c2', 'c3'})
    suspects = watched(c1=30, c2=20, c3=16)
    d = decide(obs, suspects, live={'c9'}, active=1, parallel=2,
               policy=gates.StormPolicy(10, 50.0))
    assert d.start == ('c1',) and d.waiting == ('c2', 'c3')
    assert d.sentences[-1] == ('2 confirmed host(s) wait for a recovery '
                               'slot (2 at once): c2, c3')


def test_backoff_doubles_up_to_its_bound():
    assert [gates.backoff(n, 10, 60) for n in (1, 2, 3, 4, 5)] == [
        10, 20, 40, 60, 60]


def test_a_single_host_down_is_never_a_storm_even_in_a_tiny_cloud():
    d = decide(hosts(3, down={'c1'}), watched(c1=15))
    assert not d.storm and d.start == ('c1',)


def test_unknown_hosts_count_neither_up_nor_down_for_the_storm():
    obs = hosts(10, down={'c1', 'c2'})
    for i in range(3, 9):      # a down cell: six hosts unknown
        obs[i - 1] = HostObservation(host=f'c{i}', state='unknown')
    d = decide(obs, watched(c1=20, c2=20),
               policy=gates.StormPolicy(10, 50.0))
    # 2 of the 4 readable hosts: 50 %, not above it
    assert not d.storm and d.start == ('c1', 'c2')


def test_hosts_recovered_within_the_storm_window_still_count():
    """A rolling failure (Nova calls hosts down one by one as a stalled
    bus ages their heartbeats) is a storm, although each recovery ends
    before the next host is seen down."""
    obs = hosts(10, down={'c4'}, forced={'c1', 'c2', 'c3'})
    d = decide(obs, watched(c4=20))
    assert not d.storm and d.start == ('c4',)
    d = gates.decide(obs, watched(c4=20), set(), 0, 15.0, POLICY, 2,
                     recent={'c1', 'c2', 'c3'})
    assert d.storm and d.start == ()
    assert d.sentences[0].startswith('storm guard: 4 of 10 hosts down')


def storm_if_more_than_one(suspects: set[str]):
    """``decide(counted)`` of a cloud where two hosts down are a storm."""
    def decide(counted: set[str]) -> gates.Decision:
        storm = len(suspects | counted) > 1
        return gates.Decision((), (), storm, ())
    return decide


def test_a_storms_hosts_count_for_the_window_after_it():
    """The last host back from a storm is no single failure: the storm's
    other hosts still count while the window lasts."""
    held: dict[str, float] = {}
    both = gates.with_storm_memory(storm_if_more_than_one({'a', 'b'}), {},
                                   held, {'a', 'b'}, 100.0)
    assert both.storm and held == {'a': 100.0, 'b': 100.0}
    last = gates.with_storm_memory(storm_if_more_than_one({'b'}), {},
                                   held, {'b'}, 110.0)
    assert last.storm                       # a is back, but counts


def test_a_storm_made_only_by_held_hosts_never_renews_itself():
    """Review: re-stamping every suspect of any storm cycle let held hosts
    keep a storm going for ever over one really failed host."""
    held = {'a': 100.0}
    decision = gates.with_storm_memory(storm_if_more_than_one({'x'}), {},
                                       held, {'x'}, 150.0)
    assert decision.storm and held == {'a': 100.0}     # x not stamped
    assert gates.within(held, 60.0, 161.0) == {}       # it ends


def test_a_stamp_from_a_skewed_clock_counts_from_now():
    assert gates.within({'a': 500.0, 'b': 90.0}, 60.0, 100.0) == {
        'a': 100.0, 'b': 90.0}
    assert gates.within({'a': 100.0}, 60.0, 160.0) == {}
