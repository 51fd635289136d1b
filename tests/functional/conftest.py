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


@pytest.fixture(autouse=True)
def _no_pyghmi_session_of_an_earlier_test():
    """Each test starts with no IPMI client session aimed at an earlier
    test's BMCs: those BMC processes are gone, and a new BMC may take the
    same UDP port, where pyghmi (one set of sessions per process) would
    route its answers to the dead BMC's session."""
    yield
    from pyghmi.ipmi.private import session as pyghmi_session
    cls = pyghmi_session.Session
    for handlers in list(cls.bmc_handlers.values()):
        for port, session in list(handlers.items()):
            if isinstance(session, cls) and not hasattr(session, 'server'):
                handlers.pop(port, None)
    for address in [a for a, h in cls.bmc_handlers.items() if not h]:
        cls.bmc_handlers.pop(address, None)
    cls.waiting_sessions.clear()
    cls.keepalive_sessions.clear()
    for sock in cls.socketpool:
        cls.socketpool[sock] = 0
