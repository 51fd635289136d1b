"""What the e2e recovery tests share: a cluster factory and verdicts
from ground truth (Nova's migrations and server records, the BMC power
log and the mailbox)."""
from __future__ import annotations

import collections
import json
import os

from freezer_dr.demo.cluster import Cluster
from freezer_dr.demo.cluster import wait_for
from tests import invariants

ADMIN = 'cloud-admin@example.org'
#: the simulated hosts' BMCs: ipmi (default), redfish or mixed (tox -e
#: e2e, which defaults to mixed)
BMC_KIND = os.environ.get('FREEZER_DR_BMC', 'ipmi')


def cluster_factory(tmp_path, made: list[Cluster]):
    """``make(hosts, instances, ...)``: a started cluster with the e2e
    tier's short timings, appended to ``made`` (the caller closes it)."""
    def make(hosts=4, instances=8, projects=2, overrides=None,
             cloud_options=None, replicas=3) -> Cluster:
        settings = {'engine': {'poll_interval': '0.5',
                               'fence_retry_initial': '1',
                               'fence_retry_max': '2'},
                    'monitor': {'confirm_window': '2'},
                    'fencing': {'timeout': '6', 'call_timeout': '2',
                                'power_off_timeout': '3'},
                    'evacuation': {'poll_interval': '0.3'}}
        for section, values in (overrides or {}).items():
            settings.setdefault(section, {}).update(values)
        options = {'rebuild_time': 1.0, 'service_down_time': 3.0}
        options.update(cloud_options or {})
        cluster = Cluster(str(tmp_path / f'c{len(made)}'), hosts=hosts,
                          instances=instances, projects=projects,
                          replicas=replicas, overrides=settings,
                          cloud_options=options, bmc=BMC_KIND)
        made.append(cluster)
        cluster.start()
        cluster.wait_leader()
        return cluster
    return make


def servers(cluster) -> dict[str, dict]:
    return {s.id: {'host': s.compute_host, 'status': s.status,
                   'project': s.project_id}
            for s in cluster.connection().compute.servers(all_projects=True)}


def on_host(snapshot: dict[str, dict], host: str) -> dict[str, dict]:
    return {sid: s for sid, s in snapshot.items() if s['host'] == host}


def finished(cluster, host: str, since: float, timeout: float = 90):
    """The terminal recovery record of ``host`` (only to learn its id)."""
    store = cluster.store()

    def done():
        return next((r for r in store.history(limit=20)
                     if r.host == host and r.created_at >= since), None)
    try:
        return wait_for(done, timeout, f'the recovery of {host} to end',
                        interval=0.3)
    except TimeoutError as exc:
        live = store.get_recovery(host)
        seen = 'no live record' if live is None else json.dumps(
            {'step': live.step, 'reason': live.reason,
             'steps': live.steps[-12:],
             'instances': [(i.id, i.state) for i in live.instances]},
            default=str)
        leaders = [r.member_id for r in cluster.leaders()]
        raise TimeoutError(f'{exc}; {seen}; leaders: {leaders}') from exc


def busiest(snapshot: dict[str, dict], count: int = 1) -> list[str]:
    per = collections.Counter(s['host'] for s in snapshot.values())
    return [h for h, _ in per.most_common(count)]


def assert_recovered(cluster, before, host, since):
    """Ground truth: fenced first, one evacuation each, original state."""
    conn = cluster.connection()
    log = cluster.cloud.bmc_log()
    mine = on_host(before, host)
    assert invariants.check_fenced_before_evacuated(conn, log, host,
                                                    since) == []
    assert invariants.check_one_evacuation_each(conn, host, since,
                                                list(mine)) == []
    after = servers(cluster)
    for sid, was in mine.items():
        assert after[sid]['host'] not in (None, host), sid
        assert after[sid]['status'] == was['status'], sid
    assert cluster.cloud.power(host) == 'off'


def assert_mailed_once(cluster, record, before, host):
    """Each affected user exactly one mail; the admins one summary."""
    counts = invariants.mail_per_recipient(cluster.cloud.maildir, record.id)
    assert counts[ADMIN] == 1
    users = [a for a in counts if a != ADMIN]
    assert users, 'no user was told'
    assert all(counts[a] == 1 for a in users), counts
