"""The safety gates, one test per branch."""
from freezer_dr.engine import gates
from freezer_dr.engine.model import HostObservation

POLICY = gates.StormPolicy(max_failed_hosts=3, max_failed_percent=30.0)


def hosts(n, down=(), disabled=(), forced=()):
    return [HostObservation(
        host=f'c{i}', state='down' if f'c{i}' in down else 'up',
        status='disabled' if f'c{i}' in disabled else 'enabled',
        forced_down=f'c{i}' in forced) for i in range(1, n + 1)]


def decide(obs, suspects, live=(), active=0, now=100.0, window=15.0,
           parallel=2, policy=POLICY):
    return gates.decide(obs, suspects, set(live), active, now, window,
                        policy, parallel)


def test_first_sighting_starts_the_confirmation_window():
    obs = hosts(10, down={'c3'})
    assert gates.track_suspects(obs, {}, set(), 100.0) == {'c3': 100.0}


def test_first_sighting_is_kept_while_the_host_stays_down():
    obs = hosts(10, down={'c3'})
    assert gates.track_suspects(obs, {'c3': 80.0}, set(), 100.0) == {
        'c3': 80.0}


def test_a_host_seen_up_again_drops_out_of_the_suspects():
    assert gates.track_suspects(hosts(10), {'c3': 80.0}, set(), 100.0) == {}


def test_disabled_or_forced_down_hosts_are_never_suspects():
    obs = hosts(10, down={'c3', 'c4'}, disabled={'c3'}, forced={'c4'})
    assert gates.track_suspects(obs, {}, set(), 100.0) == {}


def test_hosts_under_recovery_are_not_suspects_again():
    obs = hosts(10, down={'c3'})
    assert gates.track_suspects(obs, {}, {'c3'}, 100.0) == {}


def test_host_inside_its_window_waits_and_says_how_long():
    d = decide(hosts(10, down={'c3'}), {'c3': 88.0})
    assert d.start == () and not d.storm
    assert d.sentences == (
        'host c3 down 12 s of 15 s confirmation window',)


def test_host_past_its_window_starts():
    d = decide(hosts(10, down={'c3'}), {'c3': 80.0})
    assert d.start == ('c3',)
    assert d.sentences == ('host c3 confirmed down: starting recovery',)


def test_storm_by_percent_holds_everything():
    obs = hosts(10, down={'c1', 'c2', 'c3', 'c4'})
    suspects = {h: 0.0 for h in ('c1', 'c2', 'c3', 'c4')}
    d = decide(obs, suspects, policy=gates.StormPolicy(10, 30.0))
    assert d.storm and d.start == ()
    assert d.sentences == (
        'storm guard: 4 of 10 hosts down (40 %, > 30 %): holding',)


def test_storm_by_count_holds_everything():
    obs = hosts(100, down={'c1', 'c2', 'c3', 'c4'})
    suspects = {h: 0.0 for h in ('c1', 'c2', 'c3', 'c4')}
    d = decide(obs, suspects)
    assert d.storm and d.start == ()
    assert d.sentences[0].startswith('storm guard: 4 of 100 hosts down')


def test_live_recoveries_count_towards_the_storm():
    obs = hosts(10, down={'c1', 'c2'})
    d = decide(obs, {'c2': 0.0}, live={'c5', 'c6', 'c7'}, active=3)
    assert d.storm


def test_hosts_out_of_service_do_not_count_towards_the_storm():
    obs = hosts(10, down={'c1', 'c2', 'c3', 'c4'},
                forced={'c1', 'c2', 'c3'})
    d = decide(obs, {'c4': 0.0})
    assert not d.storm and d.start == ('c4',)


def test_parallel_limit_leaves_confirmed_hosts_waiting():
    obs = hosts(20, down={'c1', 'c2', 'c3'})
    suspects = {'c1': 1.0, 'c2': 2.0, 'c3': 3.0}
    d = decide(obs, suspects, live={'c9'}, active=1, parallel=2,
               policy=gates.StormPolicy(10, 50.0))
    assert d.start == ('c1',) and d.waiting == ('c2', 'c3')
    assert d.sentences[-1] == ('2 confirmed host(s) wait for a recovery '
                               'slot (2 at once): c2, c3')


def test_backoff_doubles_up_to_its_bound():
    assert [gates.backoff(n, 10, 60) for n in (1, 2, 3, 4, 5)] == [
        10, 20, 40, 60, 60]


def test_a_single_host_down_is_never_a_storm_even_in_a_tiny_cloud():
    d = decide(hosts(3, down={'c1'}), {'c1': 0.0})
    assert not d.storm and d.start == ('c1',)
