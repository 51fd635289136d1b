"""End to end against real Nova: etcd, two freezer-dr replicas, the box.

The deployment of ``freezer_dr.demo.cluster.Cluster`` with the simulated
cloud swapped for the real-Nova box (its state dir writes the same
``freezer-dr.conf``). Verdicts come from ground truth: Nova's migrations
and servers, the BMC power log.
"""

import os
import time

import pytest

from freezer_dr.demo.cluster import Cluster
from freezer_dr.demo.cluster import wait_for
from tests import invariants
from tests.fixtures.realnova import SERVICE_DOWN_TIME
from tests.fixtures.realnova import requires_nova
from tests.novabox.handle import RealNovaCloud

pytestmark = requires_nova


class RealNovaCluster(Cluster):
    """etcd + the real-Nova box + freezer-dr replicas."""

    def __init__(self, workdir: str, hosts: int = 4, replicas: int = 2,
                 overrides: dict | None = None, cells: int = 2) -> None:
        super().__init__(workdir, hosts=hosts, instances=0,
                         replicas=replicas, overrides=overrides)
        self.cloud = RealNovaCloud(os.path.join(self.workdir, 'cloud'),
                                   hosts=hosts, cells=cells,
                                   service_down_time=SERVICE_DOWN_TIME)


@pytest.fixture
def cluster(tmp_path):
    settings = {'engine': {'poll_interval': '0.5'},
                'monitor': {'confirm_window': '2'},
                'fencing': {'timeout': '10', 'call_timeout': '3',
                            'power_off_timeout': '5'},
                'evacuation': {'poll_interval': '0.5'}}
    with RealNovaCluster(str(tmp_path), overrides=settings) as made:
        made.wait_leader()
        yield made


def servers(conn) -> dict[str, dict]:
    return {s.id: {'host': s.compute_host, 'status': s.status}
            for s in conn.compute.servers(all_projects=True)}


@pytest.mark.parametrize('mode', ['crash', 'power'])
def test_failed_host_is_fenced_isolated_and_evacuated(cluster, mode):
    cloud = cluster.cloud
    host = cloud.hosts[0]
    booted = {cloud.boot('e2e-active', host, project='tenant-a'): 'ACTIVE',
              cloud.boot('e2e-shutoff', host, project='tenant-b',
                         status='SHUTOFF'): 'SHUTOFF'}
    store = cluster.store()
    since = time.time()
    cloud.fail(host, mode)

    def finished():
        return next((r for r in store.history(limit=10)
                     if r.host == host and r.created_at >= since), None)
    record = wait_for(finished, SERVICE_DOWN_TIME + 90,
                      f'the recovery of {host} to end', interval=0.5)
    assert record.step == 'done', record.reason

    conn = cluster.connection()
    log = cloud.bmc_log()
    assert invariants.check_fenced_before_evacuated(
        conn, log, host, since) == []
    assert invariants.check_one_evacuation_each(
        conn, host, since, list(booted)) == []
    after = servers(conn)
    for server_id, status in booted.items():
        assert after[server_id]['host'] not in (None, host), server_id
        assert after[server_id]['status'] == status, server_id
    assert cloud.power(host) == 'off'
    service = next(s for s in conn.compute.services()
                   if s.host == host and s.binary == 'nova-compute')
    assert (service.state, service.is_forced_down, service.status) == (
        'down', True, 'disabled')
    assert record.id in service.disabled_reason


def test_host_in_a_healthy_cell_is_recovered_while_another_cell_is_down(
        cluster):
    """compute-1 (cell1) fails while Nova cannot reach cell2: it is
    fenced and evacuated within cell1; cell2's hosts, listed by Nova
    without a state, are blind: never fenced, never isolated."""
    cloud = cluster.cloud
    assert cloud.cells == {'cell1': ['compute-1', 'compute-3'],
                           'cell2': ['compute-2', 'compute-4']}
    failed, blind = 'compute-1', cloud.cells['cell2']
    moving = cloud.boot('cells-e2e', failed, project='tenant-a')
    staying = cloud.boot('cells-e2e-blind', blind[0], project='tenant-b')
    store = cluster.store()
    since = time.time()
    cloud.control('POST', '/sim/cells/cell2', {'down': True})
    try:
        cloud.fail(failed, 'crash')

        def finished():
            return next((r for r in store.history(limit=10)
                         if r.host == failed and r.created_at >= since),
                        None)
        record = wait_for(finished, SERVICE_DOWN_TIME + 120,
                          f'the recovery of {failed} to end', interval=0.5)
        assert record.step == 'done', record.reason
        # no recovery was ever opened for a host of the down cell
        assert not [r for r in store.history(limit=50)
                    if r.host in blind and r.created_at >= since]
        assert not [h for h in blind if store.get_recovery(h)]
        # the leader lived through every look at the down cell
        assert all(r.running for r in cluster.replicas)
        assert len(cluster.leaders()) == 1
    finally:
        cloud.control('POST', '/sim/cells/cell2', {'down': False})

    conn = cluster.connection()
    log = cloud.bmc_log()
    assert invariants.check_fenced_before_evacuated(
        conn, log, failed, since) == []
    assert not [e for e in log if e['host'] in blind
                and e['command'] != 'status' and e['ts'] >= since]
    after = servers(conn)
    assert after[moving]['host'] == 'compute-3'      # stays in cell1
    assert after[staying] == {'host': blind[0], 'status': 'ACTIVE'}
    services = {s.host: s for s in conn.compute.services(
        binary='nova-compute')}
    for host in blind:
        assert (services[host].state, services[host].status,
                services[host].is_forced_down) == ('up', 'enabled', False)
    assert [cloud.power(h) for h in blind] == ['on', 'on']
