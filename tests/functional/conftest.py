"""Fixtures of the functional leader-loop tests: a small simulated cloud
and a leader lease on the test etcd."""
from __future__ import annotations

import pytest

from freezer_dr.ha import etcd as ha_etcd
from freezer_dr.ha import lease as ha_lease
from freezer_dr.ha import store as ha_store


@pytest.fixture
def cloud(sim_cloud_factory):
    return sim_cloud_factory(hosts=4, instances=4, service_down_time=2.0)


@pytest.fixture
def leader(etcd_url, cluster_name):
    """A held leader lease and its fenced store."""
    client = ha_etcd.make_client(etcd_url, 2.0)
    lease = ha_lease.LeaderLease(client, cluster_name, 'loop-test', 10.0,
                                 3.0, 0.5)
    assert lease.try_acquire()
    lease.start()
    yield lease, ha_store.CheckpointStore(client, cluster_name, lease)
    lease.stop()
    lease.release()
