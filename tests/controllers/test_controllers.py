"""Three controllers for real: namespaces, a 3-member etcd over TLS with
client certificates, one replica per controller, real links taken down.

Leadership is judged from outside, by polling every replica's ``/leader``
over the management network; overlap must be exactly zero.
"""
from __future__ import annotations

import time

import pytest

from freezer_dr.demo.cluster import wait_for as wait_until
from freezer_dr.ha import etcd as ha_etcd
from freezer_dr.ha import lease as ha_lease
from freezer_dr.ha import members as ha_members
from tests import controller_deployment as deployment
from tests import faketime
from tests import replicas as rp

TTL = deployment.TTL


def epoch_of(replica) -> int | None:
    answer = replica.leader()
    return answer.body.get('epoch') if answer.leading else None


def test_election_over_tls_across_three_controllers(deploy, etcd):
    replicas = deploy()
    leader = replicas.wait_for_leader(timeout=30)
    url = etcd.backend_url()
    wait_until(lambda: len(ha_members.list_members(
        url, replicas.cluster, 2.0)) == 3, 20, 'three members')
    with rp.LeadershipMonitor(replicas) as monitor:
        time.sleep(TTL)
    assert monitor.succession() == [leader.member_id], monitor.summary()
    assert monitor.overlap() == 0
    for replica in replicas:
        assert replica.health() == 200
        assert 'unknown certificate authority' not in replica.log_text()
    # every member is up, exactly one raft leader
    status = ha_etcd.member_status(ha_etcd.make_client(url, 2.0))
    assert all(e['reachable'] for e in status)
    assert sum(e['leader'] for e in status) == 1


def test_partitioned_controller_stops_before_a_new_leader_starts(
        deploy, controllers):
    replicas = deploy()
    leader = replicas.wait_for_leader(timeout=30)
    ctl = leader.controller
    with rp.LeadershipMonitor(replicas, interval=0.05) as monitor:
        time.sleep(1.0)
        ctl.cut()               # its etcd member loses the quorum
        new = replicas.wait_for_leader(timeout=6 * TTL, exclude=[leader])
        time.sleep(1.0)
    assert monitor.overlap() == 0, monitor.summary()
    stopped = monitor.last_leading(leader.member_id)
    started = monitor.first_leading(new.member_id)
    assert stopped is not None and started is not None
    assert stopped < started, monitor.summary()
    assert monitor.succession() == [leader.member_id, new.member_id]
    assert not leader.leader().leading
    ctl.heal()
    # back on the network, the old leader follows the new one
    with rp.LeadershipMonitor(replicas) as monitor:
        time.sleep(2 * TTL)
    assert monitor.overlap() == 0, monitor.summary()
    assert monitor.succession() == [new.member_id], monitor.summary()


@pytest.mark.parametrize('which', ['own', 'other'])
def test_losing_one_etcd_member_keeps_the_same_leader(deploy, etcd, which):
    """Three TLS endpoints: the loss of any one member (the one on the
    leader's controller, which it uses first, or another) costs no
    leadership: same leader, same epoch, never leaderless for a TTL."""
    replicas = deploy()
    leader = replicas.wait_for_leader(timeout=30)
    epoch = epoch_of(leader)
    own = leader.controller.index
    lost = etcd.members[own if which == 'own' else (own + 1) % 3]
    with rp.LeadershipMonitor(replicas) as monitor:
        time.sleep(0.5)
        lost.kill()
        time.sleep(3 * TTL)
    assert monitor.succession() == [leader.member_id], monitor.summary()
    assert epoch_of(leader) == epoch
    assert monitor.overlap() == 0
    assert monitor.leaderless() < TTL, monitor.summary()
    if which == 'own':
        # the client said which member it moved to
        log = leader.log_text()
        assert f'etcd {lost.endpoint}: ' in log and 'using ' in log


@pytest.mark.parametrize('offset, seconds', [('+2h', 7200),
                                             ('-90m', -5400)])
def test_clock_skew_on_one_replica_does_not_break_the_lease(
        deploy, etcd, offset, seconds):
    if faketime.faketime_lib() is None:
        pytest.skip(faketime.MISSING)
    replicas = deploy(env={0: faketime.faketime_env(offset)})
    skewed = replicas[0]
    first = replicas.wait_for_leader(timeout=30)
    if first is not skewed:
        # hand the lease to the skewed replica: SIGTERM releases at once
        for other in replicas.replicas[1:]:
            other.terminate()
        for other in replicas.replicas[1:]:
            assert other.wait(20) == 0
        wait_until(lambda: skewed.leader().leading or None, 6 * TTL,
                   'the skewed replica to lead')
        for other in replicas.replicas[1:]:
            other.start()
            other.wait_until_serving(90)
    reader = ha_lease.LeaderLease(
        ha_etcd.make_client(etcd.backend_url(), 2.0), replicas.cluster,
        'reader', TTL, TTL / 4, 0.5)
    found = reader.read_leader()
    # it really runs on a skewed wall clock (it wrote "since" with it)
    assert found['member_id'] == skewed.member_id
    assert abs(found['since'] - time.time() - seconds) < 60
    epoch = found['epoch']
    with rp.LeadershipMonitor(replicas) as steady:
        time.sleep(3 * TTL)     # a dozen keepalives on the skewed clock
    assert all(steady.leaders_at(i) == [skewed.member_id]
               for i in range(len(steady.rounds))), steady.summary()
    assert epoch_of(skewed) == epoch
    assert 'lost leadership' not in skewed.log_text()
    with rp.LeadershipMonitor(replicas) as monitor:
        time.sleep(0.5)
        skewed.kill()
        new = replicas.wait_for_leader(timeout=4 * TTL, exclude=[skewed])
        time.sleep(0.5)
    assert monitor.overlap() == 0, monitor.summary()
    assert monitor.first_leading(new.member_id) > \
        monitor.last_leading(skewed.member_id)
