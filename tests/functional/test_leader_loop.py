"""The leader loop, cycle by cycle, with real etcd and the simulated cloud.

One test per branch of the loop; each asserts on the sentence the cycle
returns (what an operator reads in the log) and on the world.
"""
from __future__ import annotations

import time

from freezer_dr import conf as freezer_conf
from freezer_dr.engine import loop as engine_loop
from tests import invariants
from tests.functional.loop_support import cycles_until
from tests.functional.loop_support import make_conf


def test_all_up_says_so(cloud, leader, etcd_url, cluster_name):
    lease, store = leader
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name),
                             lease, store)
    assert loop.run_cycle() == 'all 4 hosts in service up'


def test_down_host_waits_out_its_confirmation_window(cloud, leader,
                                                     etcd_url, cluster_name):
    lease, store = leader
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name),
                             lease, store)
    host = cloud.hosts[0]
    cloud.fail(host, 'crash')
    sentence = cycles_until(loop, lambda s: 'confirmation window' in s)
    assert sentence.startswith(f'host {host} down ')
    assert sentence.endswith(' of 2 s confirmation window')
    # the first sighting is checkpointed: a new leader keeps the window
    assert host in store.get('state')['suspects']
    cycles_until(loop, lambda s: f'host {host} confirmed down' in s)
    cycles_until(loop, lambda s: s == 'all 3 hosts in service up '
                                      '(1 out of service)', timeout=60)


def test_storm_holds_and_says_why(cloud, leader, etcd_url, cluster_name):
    lease, store = leader
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name),
                             lease, store)
    for host in cloud.hosts[:2]:
        cloud.fail(host, 'crash')
    sentence = cycles_until(loop, lambda s: s.startswith('storm'))
    assert sentence == ('storm guard: 2 of 4 hosts down (50 %, > 30 %): '
                        'holding')
    assert loop.hold_reason == 'storm guard'
    assert store.recoveries() == []


def test_a_storm_host_that_comes_back_last_is_not_a_single_failure(
        cloud, leader, etcd_url, cluster_name):
    """Hosts come back from a storm (a stalled bus Nova ended up calling
    down) in turn; the last one still down was then a single failure and
    was fenced. The storm's hosts count for the storm window after it."""
    lease, store = leader
    loop = engine_loop.build(make_conf(
        cloud, etcd_url, cluster_name, engine={'storm_window': 8.0}),
        lease, store)
    first, last = cloud.hosts[:2]
    for host in (first, last):
        cloud.fail(host, 'crash')
    cycles_until(loop, lambda s: s.startswith('storm'))
    cloud.recover(first)
    cycles_until(loop, lambda s: f'{first}' not in str(
        loop.last_suspects) and s.startswith('storm'))
    assert store.recoveries() == []
    # from ground truth: no power command reached either BMC
    assert invariants.off_commands(cloud.bmc_log(), last) == []
    assert invariants.off_commands(cloud.bmc_log(), first) == []
    # still down once the window has passed: a failure of its own
    cycles_until(loop, lambda s: f'host {last} confirmed down' in s,
                 timeout=40)


def test_paused_cluster_opens_no_recovery(cloud, leader, etcd_url,
                                          cluster_name):
    lease, store = leader
    store.set_paused('maintenance', 'alice')
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name),
                             lease, store)
    cloud.fail(cloud.hosts[0], 'crash')
    time.sleep(4.5)   # service_down_time + confirmation window
    sentence = cycles_until(loop, lambda s: s.startswith('paused'))
    assert sentence == 'paused by alice (maintenance): no new recoveries'
    assert store.recoveries() == []


def test_blind_monitor_fences_nothing(cloud, leader, etcd_url,
                                     cluster_name):
    lease, store = leader
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name),
                             lease, store)
    assert loop.run_cycle() == 'all 4 hosts in service up'
    cloud.inject(error_rate={'nova': 1.0})
    sentence = cycles_until(loop, lambda s: s.startswith('blind'))
    assert 'monitor unavailable' in sentence
    assert sentence.endswith('no new fencing')
    assert loop.hold_reason == 'monitor unavailable'


def test_without_a_cloud_it_cannot_observe(leader, etcd_url, cluster_name,
                                           tmp_path):
    lease, store = leader
    conf = freezer_conf.new_config()
    conf([])
    conf.set_override('backend_url', etcd_url, 'coordination')
    conf.set_override('inventory', str(tmp_path / 'missing.yaml'),
                      'fencing')
    loop = engine_loop.build(conf, lease, store)
    sentence = loop.run_cycle()
    assert sentence.startswith('cannot observe: ')
    assert sentence.endswith('; taking no action')
    assert 'missing.yaml' in sentence


def test_a_deposed_leader_takes_no_action(cloud, leader, etcd_url,
                                          cluster_name):
    lease, store = leader
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name),
                             lease, store)
    lease.stop()
    lease.release()
    assert loop.run_cycle() == 'not the leader: taking no action'


def test_a_slow_monitor_never_restarts_a_finished_recovery(
        sim_cloud_factory, leader, etcd_url, cluster_name):
    """The loop reads records, then waits on a slow Nova: a runner that
    finishes meanwhile must not be restarted from the stale copy."""
    from tests import invariants
    cloud = sim_cloud_factory(hosts=4, instances=8, service_down_time=2.0)
    lease, store = leader
    conf = make_conf(cloud, etcd_url, cluster_name,
                     evacuation={'poll_interval': 0.1},
                     fencing={'call_timeout': 2.0},
                     email={'timeout': 3.0})
    conf.set_override('api_timeout', 3.0, 'cloud')
    loop = engine_loop.build(conf, lease, store)
    host = cloud.hosts[0]
    cloud.fail(host, 'crash')
    cycles_until(loop, lambda s: 'confirmed down' in s, timeout=30)
    cloud.inject(latency={'nova': 0.4})
    for _ in range(40):             # cycles straddle the recovery's end
        loop.run_cycle()
        if not loop.busy():
            break
    cloud.inject(latency={'nova': 0.0})
    ended = [r for r in store.history(limit=10) if r.host == host]
    assert len(ended) == 1 and ended[0].step == 'done', ended
    assert store.get_recovery(host) is None
    mails = invariants.mail_per_recipient(cloud.maildir, ended[0].id)
    assert mails and set(mails.values()) == {1}, mails


def test_an_unreadable_record_holds_its_host_and_nothing_else(
        cloud, leader, etcd_url, cluster_name):
    """A record from a newer version (rolling upgrade) stops only its host."""
    import json
    lease, store = leader
    host = cloud.hosts[0]
    store.client.put(f'{store.prefix}recoveries/{host}',
                     json.dumps({'schema': 99, 'record': {}}))
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name),
                             lease, store)
    cloud.fail(host, 'crash')
    sentence = cycles_until(loop, lambda s: 'unreadable' in s)
    assert f'host {host} held: its recovery record is unreadable' in sentence
    assert 'schema 99' in sentence
    time.sleep(4.5)    # past service_down_time and the confirmation window
    sentence = loop.run_cycle()
    assert 'confirmed down' not in sentence
    assert cloud.power(host) == 'on'           # never fenced
