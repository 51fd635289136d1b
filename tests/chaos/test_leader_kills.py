"""Chaos: the leader is killed (SIGKILL) at random points of recoveries.

One deployment (real etcd, three replicas, the simulated cloud with real
BMCs and SMTP) lives through many runs. In each run a host fails and the
current leader is killed after a random delay, anywhere from detection to
the last rebuild; the dead replica is restarted as a standby. After every
run the invariants are checked from ground truth only:

- S1: no evacuation from the host before its BMC showed it off;
- S3: exactly one evacuation per instance (none failed in this cloud);
- S4: the recovery ended (terminal) and everyone was told exactly once;
- every instance ends on another host in its original power state.

``FREEZER_DR_CHAOS_RUNS`` (default 20) and ``FREEZER_DR_CHAOS_SEED`` set
the number of runs and the random seed (printed, to replay a failure).
"""
from __future__ import annotations

import os
import random
import time

import pytest

from freezer_dr.demo.cluster import Cluster
from freezer_dr.demo.cluster import wait_for
from tests import invariants

RUNS = int(os.environ.get('FREEZER_DR_CHAOS_RUNS', '20'))
SEED = int(os.environ.get('FREEZER_DR_CHAOS_SEED', str(int(time.time()))))
ADMIN = 'cloud-admin@example.org'


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    c = Cluster(str(tmp_path_factory.mktemp('chaos')), hosts=6,
                instances=24, projects=3,
                cloud_options={'rebuild_time': 2.0,
                               'service_down_time': 3.0},
                overrides={'engine': {'poll_interval': '0.5'},
                           'monitor': {'confirm_window': '2'},
                           'coordination': {'lease_ttl': '4'},
                           'evacuation': {'poll_interval': '0.3'}})
    c.start()
    yield c
    c.close()


def servers(cluster) -> dict[str, dict]:
    return {s.id: {'host': s.compute_host, 'status': s.status}
            for s in cluster.connection().compute.servers(all_projects=True)}


def run_once(cluster: Cluster, rng: random.Random, run: int) -> list[str]:
    """One failure with one leader kill; returns the violations."""
    cluster.wait_leader(timeout=60)
    before = servers(cluster)
    in_service = {s.host for s in cluster.connection().compute.services()
                  if s.state == 'up' and s.status == 'enabled'}
    candidates = sorted({s['host'] for s in before.values()} & in_service)
    host = rng.choice(candidates)
    mine = {sid: s for sid, s in before.items() if s['host'] == host}
    delay = rng.uniform(0.0, 10.0)
    since = time.time()
    cluster.cloud.fail(host, rng.choice(['crash', 'power', 'partition']))
    time.sleep(delay)
    leaders = cluster.leaders()
    for leader in leaders:
        leader.kill()
    store = cluster.store()

    def ended():
        return next((r for r in store.history(limit=50)
                     if r.host == host and r.created_at >= since), None)
    for leader in leaders:
        leader.start()
    record = wait_for(ended, 120, f'run {run}: recovery of {host}',
                      interval=0.3)
    problems = []
    conn = cluster.connection()
    log = cluster.cloud.bmc_log()
    problems += invariants.check_fenced_before_evacuated(conn, log, host,
                                                         since)
    problems += invariants.check_one_evacuation_each(conn, host, since,
                                                     list(mine))
    if record.step != 'done':
        problems.append(f'S4: recovery {record.id} ended {record.step}: '
                        f'{record.reason}')
    after = servers(cluster)
    for sid, was in mine.items():
        now = after[sid]
        if now['host'] in (None, host) or now['status'] != was['status']:
            problems.append(f'{sid}: was {was["status"]} on {host}, now '
                            f'{now["status"]} on {now["host"]}')
    mails = invariants.mail_per_recipient(cluster.cloud.maildir, record.id)
    if mails.get(ADMIN) != 1 or any(n != 1 for n in mails.values()):
        problems.append(f'S4: mails of {record.id} per recipient: '
                        f'{dict(mails)}')
    # the operator repairs the host and returns it to service
    cluster.cloud.recover(host)
    cluster.manage('host', 'enable', host)
    return [f'run {run} (kill after {delay:.1f} s, {host}): {p}'
            for p in problems]


def test_leader_killed_at_random_points_breaks_no_invariant(cluster):
    rng = random.Random(SEED)
    print(f'chaos seed {SEED}, {RUNS} runs')
    violations = []
    for run in range(1, RUNS + 1):
        violations += run_once(cluster, rng, run)
    assert violations == [], f'seed {SEED}: ' + '\n'.join(violations)
