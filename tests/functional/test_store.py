"""The checkpoint store on a real etcd: fencing, history, operator keys."""
from __future__ import annotations

import json

import pytest

from freezer_dr import exceptions
from freezer_dr.ha import etcd
from freezer_dr.ha import lease as ha_lease
from freezer_dr.ha import store as ha_store
from freezer_dr.model import InstanceRecord
from freezer_dr.model import RecoveryRecord
from freezer_dr.model import Step

TTL = 10.0            # no keepalives run here: outlast any stall
HTTP_TIMEOUT = 0.5


class FrozenClock:
    """A clock a deposed leader reads: its deadline never seems to pass."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_leader(url, cluster, member, clock=None):
    client = etcd.make_client(url, HTTP_TIMEOUT)
    kwargs = {'clock': clock} if clock else {}
    lease = ha_lease.LeaderLease(client, cluster, member, TTL, 0.5, 0.3,
                                 **kwargs)
    return lease, ha_store.CheckpointStore(client, cluster, lease,
                                           history_size=3)


@pytest.fixture
def leader(etcd_url, cluster_name):
    lease, store = make_leader(etcd_url, cluster_name, 'a')
    assert lease.try_acquire()
    yield lease, store
    lease.release()


def record(host: str, rid: str | None = None) -> RecoveryRecord:
    return RecoveryRecord(
        id=rid or f'r-{host}', host=host, step=Step.FENCING.value,
        instances=[InstanceRecord(id='i1', name='vm1', project_id='p')])


def test_checkpoint_round_trip_carries_the_epoch(leader):
    lease, store = leader
    assert store.prefix == f'/freezer-dr/{lease.cluster}/'
    rec = record('c1')
    store.put_recovery(rec)
    assert rec.epoch == lease.epoch
    assert store.get_recovery('c1') == rec
    assert store.recoveries() == [rec]
    assert store.get_recovery('c2') is None
    assert store.find(rec.id) == rec


def test_deposed_leader_cannot_write_and_new_leader_can(
        etcd_url, etcd_client, cluster_name):
    clock = FrozenClock()
    old_lease, old_store = make_leader(etcd_url, cluster_name, 'old', clock)
    assert old_lease.try_acquire()
    old_store.put_recovery(record('c1'))
    # etcd expires the old leader's lease; its frozen clock says otherwise,
    # so only the fenced transaction can stop it.
    etcd.revoke_lease(etcd_client, old_lease.lease_id)
    new_lease, new_store = make_leader(etcd_url, cluster_name, 'new')
    assert new_lease.try_acquire()
    assert old_lease.is_leader
    stale = record('c1')
    stale.step = Step.EVACUATING.value
    with pytest.raises(exceptions.StaleEpoch):
        old_store.put_recovery(stale)
    assert stale.epoch == 0             # not claimed by a rejected write
    assert not old_lease.is_leader      # the rejection demoted it
    with pytest.raises(exceptions.LeadershipLost):
        old_store.put_fenced('suspects', {'c2': 1})
    fresh = new_store.get_recovery('c1')   # a new leader resumes it
    new_store.put_recovery(fresh)
    stored = new_store.get_recovery('c1')
    assert stored.step == Step.FENCING.value
    assert stored.epoch == new_lease.epoch > old_lease.epoch
    new_lease.release()


def test_store_without_lease_refuses_fenced_writes(etcd_client,
                                                   cluster_name):
    store = ha_store.CheckpointStore(etcd_client, cluster_name)
    with pytest.raises(exceptions.LeadershipLost):
        store.put_recovery(record('c1'))
    with pytest.raises(exceptions.LeadershipLost):
        store.clear_request('retry', 'x')


def test_finish_moves_the_record_to_history_and_trims_it(leader):
    _lease, store = leader
    for i in range(5):
        rec = record(f'c{i}', f'r{i}')
        store.put_recovery(rec)
        rec.step = Step.DONE.value
        store.finish_recovery(rec)
        assert store.get_recovery(f'c{i}') is None
    assert [r.id for r in store.history()] == ['r4', 'r3', 'r2']
    assert [r.id for r in store.history(limit=1)] == ['r4']
    assert store.find('r3').step == Step.DONE.value
    assert store.find('r0') is None          # trimmed
    assert store.recoveries() == []


def test_generic_fenced_keys(leader):
    _lease, store = leader
    assert store.get('suspects') is None
    store.put_fenced('suspects', {'c1': {'first_seen': 5.0}})
    assert store.get('suspects') == {'c1': {'first_seen': 5.0}}
    store.delete_fenced('suspects')
    assert store.get('suspects') is None
    with pytest.raises(ValueError):
        store.put_fenced('leader', {})


def test_paused_flag_round_trip(etcd_client, cluster_name):
    store = ha_store.CheckpointStore(etcd_client, cluster_name)
    assert store.paused() is None
    store.set_paused('maintenance of rack 4', 'ops@host')
    paused = store.paused()
    assert paused['reason'] == 'maintenance of rack 4'
    assert paused['by'] == 'ops@host'
    assert paused['at'] > 0
    store.clear_paused()
    assert store.paused() is None


def test_operator_requests_and_fenced_clear(leader, etcd_client):
    lease, store = leader
    operator = ha_store.CheckpointStore(etcd_client, lease.cluster)
    operator.request('fence-confirmed', 'c1', {'by': 'ops'})
    operator.request('retry', 'r-9', {'by': 'ops'})
    found = store.requests('fence-confirmed')
    assert list(found) == ['c1'] and found['c1']['by'] == 'ops'
    assert list(store.requests('retry')) == ['r-9']
    store.clear_request('fence-confirmed', 'c1')
    assert store.requests('fence-confirmed') == {}


def test_newer_schema_is_a_clear_error(leader, etcd_client):
    lease, store = leader
    etcd_client.put(store.prefix + 'recoveries/c1', json.dumps(
        {'schema': 2, 'record': {'id': 'r', 'host': 'c1'}}))
    with pytest.raises(ha_store.StoreValueError, match='schema 2'):
        store.get_recovery('c1')
    with pytest.raises(exceptions.StoreUnavailable, match='upgrade'):
        store.recoveries()
    etcd_client.put(store.prefix + 'paused', 'not json')
    with pytest.raises(ha_store.StoreValueError, match='paused'):
        store.paused()


def test_unreachable_etcd_is_store_unavailable(etcd_proxy, cluster_name):
    lease, store = make_leader(etcd_proxy.url, cluster_name, 'a')
    assert lease.try_acquire()
    etcd_proxy.close()
    with pytest.raises(exceptions.StoreUnavailable):
        store.put_recovery(record('c1'))
    with pytest.raises(exceptions.StoreUnavailable):
        store.recoveries()
    with pytest.raises(exceptions.StoreUnavailable):
        store.set_paused('x', 'y')
    etcd_proxy.forward()
    lease.release()


def test_an_out_of_date_copy_never_overwrites_a_newer_record(leader):
    lease, store = leader
    store.put_recovery(record('c7'))
    mine = store.get_recovery('c7')
    stale = store.get_recovery('c7')
    mine.step = Step.EVACUATING.value
    store.put_recovery(mine)                      # the owner moves on
    store.put_recovery(mine)                      # and on (its own copy)
    stale.step = Step.HELD.value
    with pytest.raises(exceptions.StaleRecord):
        store.put_recovery(stale)
    assert store.get_recovery('c7').step == Step.EVACUATING.value
    assert lease.is_leader                         # not a lost lease
    store.finish_recovery(mine)
    with pytest.raises(exceptions.StaleRecord):    # no replay after finish
        store.put_recovery(stale)
    assert store.get_recovery('c7') is None


def test_a_new_record_is_not_written_over_a_live_one(leader):
    lease, store = leader
    store.put_recovery(record('c8', 'first'))
    with pytest.raises(exceptions.StaleRecord):
        store.put_recovery(record('c8', 'second'))
    assert store.get_recovery('c8').id == 'first'
