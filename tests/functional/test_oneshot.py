"""``freezer-dr --once``: observe, recover what is down, release, exit."""
from __future__ import annotations

import subprocess
import sys
import time

from freezer_dr.demo import config as demo_config
from freezer_dr.demo.cluster import wait_for
from tests import invariants


def write_config(tmp_path, cloud, etcd_url, cluster) -> str:
    return demo_config.over_cloud(cloud.config_file, str(
        tmp_path / 'freezer-dr.conf'), {
        'coordination': {'backend_url': etcd_url, 'cluster': cluster,
                         'member_id': 'oneshot', 'lease_ttl': 5},
        'api': {'enabled': False},
        'engine': {'poll_interval': 0.5},
        'fencing': {'call_timeout': 2},
        'cloud': {'api_timeout': 3},
        'email': {'timeout': 3},
        'monitor': {'confirm_window': 2}})


def once(config_file: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.service', '--once',
         '--config-file', config_file], capture_output=True, text=True,
        timeout=180)


def test_nothing_down_prints_no_failed_nodes(tmp_path, sim_cloud, etcd_url,
                                             cluster_name):
    result = once(write_config(tmp_path, sim_cloud, etcd_url, cluster_name))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == 'No failed nodes'


def test_a_failed_host_is_recovered_then_the_run_ends(
        tmp_path, sim_cloud_factory, etcd_url, cluster_name):
    cloud = sim_cloud_factory(hosts=3, instances=6, service_down_time=2.0)
    conn = cloud.connection(compute_api_version='2.94')
    host = cloud.hosts[0]
    mine = {s.id: s.status for s in conn.compute.servers(all_projects=True)
            if s.compute_host == host}
    since = time.time()
    cloud.fail(host, 'crash')
    wait_for(lambda: {s.host: s.state for s in conn.compute.services()}[
        host] == 'down', 30, f'Nova to see {host} down')
    result = once(write_config(tmp_path, cloud, etcd_url, cluster_name))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f'host {host}: recovery ' in result.stdout
    assert result.stdout.rstrip().endswith(f'done ({len(mine)} evacuated)')
    after = {s.id: s for s in conn.compute.servers(all_projects=True)}
    for sid, status in mine.items():
        assert after[sid].compute_host != host
        assert after[sid].status == status
    log = cloud.bmc_log()
    assert invariants.check_fenced_before_evacuated(conn, log, host,
                                                    since) == []


def test_one_shot_refuses_while_a_replica_leads(tmp_path, sim_cloud,
                                                etcd_url, cluster_name):
    from freezer_dr.ha import etcd as ha_etcd
    from freezer_dr.ha import lease as ha_lease
    client = ha_etcd.make_client(etcd_url, 2.0)
    other = ha_lease.LeaderLease(client, cluster_name, 'replica-x', 10.0,
                                 3.0, 0.5)
    assert other.try_acquire()
    try:
        result = once(write_config(tmp_path, sim_cloud, etcd_url,
                                   cluster_name))
    finally:
        other.release()
    assert result.returncode == 1
    assert 'replica-x leads' in result.stdout
