"""Recovery figures on the simulated cloud (prints JSON; not a test).

    python -m tests.benchmarks.recovery time  [--instances 50] [--runs 3]
    python -m tests.benchmarks.recovery kill  [--instances 50] [--runs 3]
    python -m tests.benchmarks.recovery cycle [--hosts 1000 5000]

``time``: host failure (crash, BMC on) until every instance of the host is
back on another host in its original status, read from Nova, against the
ideal ``service_down_time + confirm_window + fence + ceil(N/P) * rebuild``.
``kill``: the same with the leader SIGKILLed mid-evacuation; the extra time
over the undisturbed run (goal: <= lease_ttl + 2 s).
``cycle``: CPU milliseconds one leader cycle costs at N hosts (from the
leader process's own CPU counters over many cycles).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import tempfile
import time

import requests
import yaml

from freezer_dr.demo.cluster import Cluster
from freezer_dr.demo.cluster import wait_for

SERVICE_DOWN = 3.0
CONFIRM = 2.0
REBUILD = 2.0
PARALLEL = 16
LEASE_TTL = 5.0


def _cluster(workdir: str, instances: int, replicas: int = 3) -> Cluster:
    return Cluster(workdir, hosts=4, instances=0, projects=2,
                   replicas=replicas,
                   cloud_options={'rebuild_time': REBUILD,
                                  'service_down_time': SERVICE_DOWN},
                   overrides={'engine': {'poll_interval': '0.5'},
                              'monitor': {'confirm_window': str(CONFIRM)},
                              'coordination': {'lease_ttl': str(LEASE_TTL)},
                              'evacuation': {'max_parallel': str(PARALLEL),
                                             'poll_interval': '0.25'}})


def _recovered(cluster: Cluster, ids: dict[str, str], host: str) -> bool:
    servers = {s.id: s for s in cluster.connection().compute.servers(
        all_projects=True)}
    return all(servers[i].compute_host != host and servers[i].status == st
               and not servers[i].task_state for i, st in ids.items())


def one_run(workdir: str, instances: int, kill: bool) -> dict:
    with _cluster(workdir, instances) as cluster:
        leader = cluster.wait_leader()
        host = cluster.cloud.hosts[0]
        ids = {}
        for n in range(instances):
            status = 'SHUTOFF' if n % 10 == 9 else 'ACTIVE'
            ids[cluster.cloud.boot(f'vm-{n}', host, status=status)] = status
        t0 = time.time()
        cluster.cloud.fail(host, 'crash')
        store = cluster.store()
        killed = None
        if kill:
            def evacuating():
                r = store.get_recovery(host)
                return r and any(i.state == 'done' for i in r.instances)
            wait_for(evacuating, 120, 'the evacuation to start', 0.05)
            leader = cluster.leaders()[0]
            leader.kill()
            killed = time.time() - t0
        wait_for(lambda: _recovered(cluster, ids, host), 300,
                 'every instance recovered', 0.2)
        total = time.time() - t0
        record = next(r for r in store.history(limit=5) if r.host == host)
        fence = record.fence['finished_at'] - record.fence['started_at']
        ideal = (SERVICE_DOWN + CONFIRM + fence
                 + math.ceil(instances / PARALLEL) * REBUILD)
        return {'seconds': round(total, 2), 'ideal': round(ideal, 2),
                'ratio': round(total / ideal, 3),
                'fence_seconds': round(fence, 3),
                'killed_at': round(killed, 2) if killed else None}


def bench_time(args, kill: bool) -> dict:
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as workdir:
            runs.append(one_run(workdir, args.instances, kill))
    seconds = [r['seconds'] for r in runs]
    return {'benchmark': 'recovery-kill' if kill else 'recovery-time',
            'instances': args.instances, 'max_parallel': PARALLEL,
            'rebuild_seconds': REBUILD, 'service_down_time': SERVICE_DOWN,
            'confirm_window': CONFIRM, 'lease_ttl': LEASE_TTL,
            'runs': runs, 'min': min(seconds),
            'median': statistics.median(seconds), 'max': max(seconds),
            'median_ratio_to_ideal': statistics.median(
                r['ratio'] for r in runs)}


def _cpu_seconds(pid: int) -> float:
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def _cycles(port: int) -> float:
    text = requests.get(f'http://127.0.0.1:{port}/metrics', timeout=2).text
    match = re.search(r'^freezer_dr_cycles_total(?:\{[^}]*\})? (\S+)$', text,
                      re.M)
    return float(match.group(1)) if match else 0.0   # no cycle yet


def bench_cycle(args) -> dict:
    out = []
    for hosts in args.hosts:
        with tempfile.TemporaryDirectory() as workdir:
            # no BMC processes at this scale: a manual fencing level each
            inventory = os.path.join(workdir, 'nodes.yaml')
            with open(inventory, 'w') as f:
                yaml.safe_dump({'nodes': {
                    f'compute-{n}': {'fencing': [{'driver': 'manual'}]}
                    for n in range(1, hosts + 1)}}, f)
            cluster = Cluster(workdir, hosts=hosts, instances=hosts * 2,
                              projects=5, replicas=1,
                              cloud_options={'bmcs': False},
                              overrides={'engine': {'poll_interval': '0.2'},
                                         'fencing': {'inventory': inventory},
                                         'coordination': {'lease_ttl': '10'}})
            with cluster:
                leader = cluster.wait_leader(timeout=120)
                port = leader.api_port
                wait_for(lambda p=port: _cycles(p) >= 3, 120,
                         'the first cycles')
                pid = leader.pid
                cpu0, n0 = _cpu_seconds(pid), _cycles(leader.api_port)
                time.sleep(args.seconds)
                cpu1, n1 = _cpu_seconds(pid), _cycles(leader.api_port)
            out.append({'hosts': hosts, 'cycles': int(n1 - n0),
                        'cpu_ms_per_cycle': round(
                            1000 * (cpu1 - cpu0) / max(1, n1 - n0), 1)})
    return {'benchmark': 'leader-cycle-cost', 'results': out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    sub = parser.add_subparsers(dest='what', required=True)
    for name in ('time', 'kill'):
        p = sub.add_parser(name)
        p.add_argument('--instances', type=int, default=50)
        p.add_argument('--runs', type=int, default=3)
    p = sub.add_parser('cycle')
    p.add_argument('--hosts', type=int, nargs='+', default=[1000, 5000])
    p.add_argument('--seconds', type=float, default=20.0)
    args = parser.parse_args()
    if args.what == 'cycle':
        result = bench_cycle(args)
    else:
        result = bench_time(args, kill=args.what == 'kill')
    print(json.dumps(result, indent=2))


if __name__ == '__main__':
    main()
