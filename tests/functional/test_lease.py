"""The leader lease against a real etcd: one leader, epochs, self-demotion."""
from __future__ import annotations

import threading
import time

import pytest

from freezer_dr import exceptions
from freezer_dr.demo.cluster import wait_for
from freezer_dr.ha import etcd
from freezer_dr.ha import lease as ha_lease

TTL = 2.0             # etcd's shortest lease with default election timing
KEEPALIVE = 0.5
MARGIN = 0.3
HTTP_TIMEOUT = 0.5
LONG_TTL = 30.0


def make_lease(url: str, cluster: str, member: str, **kwargs):
    client = etcd.make_client(url, HTTP_TIMEOUT)
    settings = {'ttl': TTL, 'keepalive_interval': KEEPALIVE,
                'margin': MARGIN}
    settings.update(kwargs)
    return ha_lease.LeaderLease(client, cluster, member, **settings)


class Events:
    """Records what a lease told its listeners."""

    def __init__(self, lease: ha_lease.LeaderLease) -> None:
        self.seen: list[bool] = []
        self.lost = threading.Event()
        self.gained = threading.Event()
        lease.add_listener(self)

    def __call__(self, leader: bool) -> None:
        self.seen.append(leader)
        (self.gained if leader else self.lost).set()


@pytest.fixture
def leases():
    made: list[ha_lease.LeaderLease] = []
    yield made
    for lease in made:
        lease.stop()
        try:
            lease.release()
        except exceptions.StoreUnavailable:
            pass


def contend(lease, barrier: threading.Barrier, results: dict) -> None:
    barrier.wait()
    results[lease.member_id] = lease.try_acquire()


def test_exactly_one_of_three_contenders_wins_and_no_lease_leaks(
        etcd_url, etcd_client, cluster_name, leases):
    # Nothing keeps these leases alive: a TTL well above any stall of a
    # loaded machine keeps the winner's lease until it is read back.
    leases.extend(make_lease(etcd_url, cluster_name, f'm{i}', ttl=LONG_TTL)
                  for i in range(3))
    before = set(etcd.list_leases(etcd_client))
    for _round in range(4):
        barrier = threading.Barrier(3)
        results: dict[str, bool] = {}

        threads = [threading.Thread(target=contend,
                                    args=(lease, barrier, results))
                   for lease in leases]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        winners = [name for name, won in results.items() if won]
        assert len(winners) == 1, results
        winner = next(le for le in leases if le.member_id == winners[0])
        assert [le.is_leader for le in leases].count(True) == 1
        leader = winner.read_leader()
        assert leader['member_id'] == winner.member_id
        assert leader['epoch'] == winner.epoch
        assert leader['lease_id'] == winner.lease_id
        assert 0 < leader['ttl_remaining'] <= LONG_TTL
        assert set(etcd.list_leases(etcd_client)) - before == {
            winner.lease_id}
        winner.release()
    assert set(etcd.list_leases(etcd_client)) - before == set()


def test_epoch_rises_with_each_new_leader(etcd_url, cluster_name, leases):
    leases.extend(make_lease(etcd_url, cluster_name, m) for m in 'abc')
    epochs = []
    for lease in leases:
        assert lease.try_acquire()
        epochs.append(lease.ensure())
        lease.release()
        assert lease.epoch is None
    assert epochs == sorted(epochs) and len(set(epochs)) == 3


def test_leader_key_names_the_member(etcd_url, cluster_name, leases):
    lease = make_lease(etcd_url, cluster_name, 'a', info={'api': 'x:1'})
    leases.append(lease)
    assert lease.leader_key == f'/freezer-dr/{cluster_name}/leader'
    assert lease.read_leader() is None
    assert lease.try_acquire()
    leader = lease.read_leader()
    assert leader['member_id'] == 'a'
    assert leader['api'] == 'x:1'
    assert leader['schema'] == 1
    assert leader['since'] == lease.since
    assert {'host', 'pid'} <= set(leader)


def test_release_lets_a_standby_acquire_at_once(etcd_url, cluster_name,
                                                leases):
    a, b = (make_lease(etcd_url, cluster_name, m) for m in 'ab')
    leases.extend([a, b])
    events = Events(a)
    assert a.try_acquire()
    assert not b.try_acquire()
    a.release()
    assert events.seen == [True, False]
    assert not a.is_leader
    with pytest.raises(exceptions.LeadershipLost):
        a.ensure()
    assert b.try_acquire()          # no wait for a TTL
    assert b.read_leader()['member_id'] == 'b'


def test_release_does_not_delete_someone_elses_key(etcd_url, etcd_client,
                                                   cluster_name, leases):
    a, b = (make_lease(etcd_url, cluster_name, m) for m in 'ab')
    leases.extend([a, b])
    assert a.try_acquire()
    etcd.revoke_lease(etcd_client, a.lease_id)   # a's lease expires
    assert b.try_acquire()
    a.release()
    assert b.read_leader()['member_id'] == 'b'
    assert b.keepalive()


def test_standbys_polling_grant_no_leases(etcd_url, etcd_client,
                                          cluster_name, leases):
    # The leader sends no keepalives here: a long TTL keeps its lease
    # alive through forty polls on a slow machine.
    leases.extend(make_lease(etcd_url, cluster_name, m, ttl=LONG_TTL)
                  for m in 'abc')
    assert leases[0].try_acquire()
    before = set(etcd.list_leases(etcd_client))
    for _ in range(20):
        assert not leases[1].try_acquire()
        assert not leases[2].try_acquire()
    assert set(etcd.list_leases(etcd_client)) - before == set()


def test_ensure_refuses_when_the_step_does_not_fit(etcd_url, cluster_name,
                                                   leases):
    lease = make_lease(etcd_url, cluster_name, 'a')
    leases.append(lease)
    with pytest.raises(exceptions.LeadershipLost):
        lease.ensure()
    assert lease.try_acquire()
    assert lease.ensure(0.1) == lease.epoch
    with pytest.raises(exceptions.LeadershipLost):
        lease.ensure(need=TTL)


def test_lost_leader_key_ends_leadership(etcd_url, etcd_client,
                                         cluster_name, leases):
    lease = make_lease(etcd_url, cluster_name, 'a')
    leases.append(lease)
    events = Events(lease)
    assert lease.try_acquire()
    etcd_client.delete(lease.leader_key)      # an operator deletes it
    assert not lease.keepalive()
    assert events.seen == [True, False]
    assert lease.epoch is None


@pytest.mark.parametrize('cut', ['close', 'blackhole'])
def test_partitioned_leader_demotes_itself_before_its_lease_expires(
        cut, etcd_proxy, cluster_name, leases):
    lease = make_lease(etcd_proxy.url, cluster_name, 'a')
    leases.append(lease)
    events = Events(lease)
    assert lease.try_acquire()
    lease.start()
    time.sleep(KEEPALIVE * 2)               # a few good keepalives
    etcd_proxy.set_mode(cut)
    cut_at = time.monotonic()
    # The last good keepalive was sent before the cut, and the deadline
    # counts from its sending: it never passes cut_at + TTL (a keepalive
    # in flight at the cut may still move it, up to there), so no failed
    # keepalive moved it and the leader has stood down by then.
    while (now := time.monotonic()) < cut_at + TTL:
        assert now + lease.remaining() <= cut_at + TTL
        time.sleep(0.05)
    assert not lease.is_leader
    assert events.lost.wait(5)
    assert events.seen == [True, False]
    assert lease.last_error


def test_same_epoch_after_etcd_comes_back(etcd_factory, cluster_name,
                                          leases):
    server = etcd_factory()
    lease = make_lease(server.url, cluster_name, 'a')
    standby = make_lease(server.url, cluster_name, 'b')
    leases.extend([lease, standby])
    events = Events(lease)
    assert lease.try_acquire()
    epoch = lease.epoch
    lease.start()
    server.pause()
    assert events.lost.wait(TTL + 2)
    assert not lease.is_leader
    server.resume()
    server.restart()        # etcd extends every lease on restart
    wait_for(lambda: lease.is_leader, 15, 'leadership again')
    assert lease.epoch == epoch
    assert lease.read_leader()['epoch'] == epoch
    assert events.seen == [True, False, True]
    assert not standby.try_acquire()


def test_dead_leader_is_replaced_after_its_ttl(etcd_url, cluster_name,
                                               leases):
    a, b = (make_lease(etcd_url, cluster_name, m) for m in 'ab')
    leases.extend([a, b])
    assert a.try_acquire()
    # a dies: no keepalives. b gets in once etcd expires a's lease.
    wait_for(b.try_acquire, TTL + 3, 'b to acquire', interval=0.2)
    assert b.epoch > a.epoch
    assert not a.keepalive()
    assert a.epoch is None


def test_keepalive_uses_the_short_http_timeout(etcd_proxy, cluster_name,
                                               leases):
    lease = make_lease(etcd_proxy.url, cluster_name, 'a')
    leases.append(lease)
    assert lease.try_acquire()
    etcd_proxy.blackhole()
    started = time.monotonic()
    assert not lease.keepalive()
    # The request is abandoned after HTTP_TIMEOUT, well before the lease.
    assert time.monotonic() - started < TTL


def test_listener_may_release_from_the_keepalive_thread(
        etcd_url, etcd_client, cluster_name, leases):
    lease = make_lease(etcd_url, cluster_name, 'a')
    leases.append(lease)
    released = threading.Event()

    def on_change(leader: bool) -> None:
        if not leader:
            lease.release()         # must not deadlock on the lease's locks
            released.set()

    lease.add_listener(on_change)
    assert lease.try_acquire()
    lease.start()
    etcd_client.delete(lease.leader_key)
    assert released.wait(5)
    assert lease.lease_id is None
    before = set(etcd.list_leases(etcd_client))
    assert lease.try_acquire()
    assert set(etcd.list_leases(etcd_client)) - before == {lease.lease_id}


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def test_deadline_counts_from_before_the_last_good_keepalive(
        etcd_proxy, cluster_name, leases):
    clock = ManualClock()
    lease = make_lease(etcd_proxy.url, cluster_name, 'a', clock=clock)
    leases.append(lease)
    assert lease.try_acquire()
    assert lease.remaining() == pytest.approx(TTL)
    clock.now += 1.0
    assert lease.remaining() == pytest.approx(TTL - 1.0)
    assert lease.keepalive()
    assert lease.remaining() == pytest.approx(TTL)
    clock.now += 1.0
    etcd_proxy.close()
    assert not lease.keepalive()            # a failed keepalive ...
    assert lease.remaining() == pytest.approx(TTL - 1.0)   # ... moves nothing
    clock.now += TTL - 1.0 - MARGIN + 0.01
    assert not lease.is_leader              # within the margin: stand down
    with pytest.raises(exceptions.LeadershipLost):
        lease.ensure()
    etcd_proxy.forward()
    assert lease.keepalive()                # etcd still had our lease
    assert lease.is_leader and lease.remaining() == pytest.approx(TTL)


def test_losing_the_etcd_raft_leader_keeps_our_epoch(etcd_cluster,
                                                     cluster_name, leases):
    etcd_leader = etcd_cluster.leader()
    follower = next(m for m in etcd_cluster.members if m is not etcd_leader)
    lease = make_lease(follower.url, cluster_name, 'a')
    standby = make_lease(follower.url, cluster_name, 'b')
    leases.extend([lease, standby])
    assert lease.try_acquire()
    epoch = lease.epoch
    etcd_leader.kill()
    # etcd elects a new raft leader and extends every lease: we keep ours.
    wait_for(lease.keepalive, 10, 'a good keepalive', interval=0.2)
    assert lease.epoch == epoch == lease.read_leader()['epoch']
    assert not standby.try_acquire()
