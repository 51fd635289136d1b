"""Operator requests end to end: ``freezer-dr-manage`` as a real process,
a leader loop on real etcd, the simulated cloud with real BMCs.

``recovery cancel`` before and after fencing; ``host fenced`` names the
live recovery and never outweighs a BMC that reads the host ON.
"""
from __future__ import annotations

import subprocess
import sys

import yaml

from freezer_dr.demo import config as demo_config
from freezer_dr.demo.replica import service_env
from freezer_dr.engine import loop as engine_loop
from tests import invariants
from tests.functional.loop_support import cycles_until
from tests.functional.loop_support import make_conf


def manage(cloud, etcd_url, cluster, *args) -> subprocess.CompletedProcess:
    """``freezer-dr-manage`` with the cloud's config, on the test etcd."""
    config = demo_config.over_cloud(
        cloud.config_file, cloud.config_file + '.manage',
        {'coordination': {'backend_url': etcd_url, 'cluster': cluster}})
    return subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.manage', '--config-file',
         config, *args], env=service_env(), capture_output=True,
        text=True, timeout=60)


def with_manual_level(cloud, host) -> None:
    """Add a manual level after the host's BMC in the cloud's inventory."""
    with open(cloud.nodes_yaml) as f:
        nodes = yaml.safe_load(f)
    nodes['nodes'][host]['fencing'].append({'driver': 'manual'})
    with open(cloud.nodes_yaml, 'w') as f:
        yaml.safe_dump(nodes, f)


def test_cancel_before_fencing_and_refused_after(cloud, leader, etcd_url,
                                                 cluster_name):
    lease, store = leader
    # two hosts of four failing within a minute is a storm; this test is
    # about cancelling, so the second failure is not held as one
    conf = make_conf(cloud, etcd_url, cluster_name,
                     engine={'fence_retry_initial': 60.0,
                             'max_failed_percent': 50.0})
    loop = engine_loop.build(conf, lease, store)
    host, other = cloud.hosts[0], cloud.hosts[1]
    cloud.bmc_fault(host, 'unreachable')
    cloud.fail(host, 'crash')
    cycles_until(loop, lambda s: f'host {host} held: fencing failed' in s,
                 timeout=60)
    record = store.get_recovery(host)
    done = manage(cloud, etcd_url, cluster_name, 'recovery', 'cancel',
                  record.id, '--reason', 'host being replaced')
    assert done.returncode == 0, done.stdout + done.stderr
    cycles_until(loop, lambda s: store.get_recovery(host) is None)
    [ended] = [r for r in store.history(limit=5) if r.id == record.id]
    assert ended.step == 'failed'
    assert ended.reason.endswith(': host being replaced')
    assert invariants.off_commands(cloud.bmc_log(), host) == []
    cancelled = [m for m in invariants.messages(cloud.maildir)
                 if f'{record.id}:cancelled' in m['X-Freezer-DR-Key']]
    assert len(cancelled) == 1
    # once a power-off is verified, a cancel is refused
    cloud.bmc_fault(host, 'none')
    cloud.recover(host)
    cycles_until(loop, lambda s: s == 'all 4 hosts in service up')
    cloud.fail(other, 'crash')
    cycles_until(loop, lambda s: f'recovering {other}: evacuating' in s
                 or (store.history(limit=1) and store.history(
                     limit=1)[0].host == other), timeout=60)
    fenced = store.get_recovery(other) or store.history(limit=1)[0]
    refused = manage(cloud, etcd_url, cluster_name, 'recovery', 'cancel',
                     fenced.id, '--reason', 'too late')
    assert refused.returncode == 1
    assert ('refused' in refused.stdout or 'already ended' in
            refused.stdout), refused.stdout


def test_a_manual_confirmation_names_the_live_recovery(
        cloud, leader, etcd_url, cluster_name):
    lease, store = leader
    host = cloud.hosts[0]
    none = manage(cloud, etcd_url, cluster_name, 'host', 'fenced', host)
    assert none.returncode == 1 and 'no recovery' in none.stdout
    with_manual_level(cloud, host)
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name),
                             lease, store)
    cloud.bmc_fault(host, 'wrong-password')
    cloud.fail(host, 'power')            # really off: the BMC cannot say
    cycles_until(loop, lambda s: 'awaiting operator confirmation' in s,
                 timeout=60)
    record = store.get_recovery(host)
    wrong = manage(cloud, etcd_url, cluster_name, 'host', 'fenced', host,
                   '--recovery', 'some-other-id')
    assert wrong.returncode == 1 and record.id in wrong.stdout
    ok = manage(cloud, etcd_url, cluster_name, 'host', 'fenced', host,
                '--recovery', record.id)
    assert ok.returncode == 0, ok.stdout
    cycles_until(loop, lambda s: store.get_recovery(host) is None,
                 timeout=90)
    [ended] = [r for r in store.history(limit=5) if r.id == record.id]
    assert ended.step == 'done' and ended.fence['level'] == 'manual'
