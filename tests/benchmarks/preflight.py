"""What the fencing readiness checks cost at scale (prints JSON).

    python -m tests.benchmarks.preflight [--hosts 1000] [--interval 60]
        [--seconds 60] [--bmc ipmi|redfish|mixed]

The simulated cloud with one real BMC per host (``--hosts``), one replica
leading. The leader reads every level of every host once per
``--interval`` (``[fencing] check_interval``; default 300 in production),
at most ``check_concurrency`` (4) at once. Measured over ``--seconds``,
once with the checks on and once with them off (``check_interval = 0``):
the BMC calls per second (from the BMCs' own power log: every ``status``
read), the power commands sent (must be 0), the results written, and the
leader's CPU (from /proc), so the difference is the checks' own cost.
Figures at the production default follow by scaling with the interval.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from freezer_dr.demo.cluster import Cluster
from tests.benchmarks.recovery import _cpu_seconds


def _measure(hosts: int, interval: float, seconds: float, bmc: str) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        cluster = Cluster(
            workdir, hosts=hosts, instances=0, projects=1, replicas=1,
            bmc=bmc,
            overrides={'fencing': {'check_interval': str(interval),
                                   'check_concurrency': '4'},
                       'engine': {'poll_interval': '2'},
                       'coordination': {'lease_ttl': '10'}})
        with cluster:
            leader = cluster.wait_leader(timeout=300)
            pid = leader.pid
            time.sleep(5)                     # first cycles, drivers loaded
            since = time.time()
            cpu0 = _cpu_seconds(pid)
            time.sleep(seconds)
            cpu1 = _cpu_seconds(pid)
            until = time.time()
            log = [e for e in cluster.cloud.bmc_log()
                   if since <= e['t'] < until]
            written = len(cluster.store().values('fencing/'))
    reads = [e for e in log if e['command'] == 'status']
    commands = [e for e in log if e['command'] != 'status']
    return {'check_interval': interval, 'seconds': seconds,
            'bmc_reads': len(reads),
            'bmc_reads_per_second': round(len(reads) / seconds, 2),
            'hosts_read': len({e['host'] for e in reads}),
            'power_commands': len(commands),
            'results_stored': written,
            'leader_cpu_percent': round(100 * (cpu1 - cpu0) / seconds, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--hosts', type=int, default=1000)
    parser.add_argument('--interval', type=float, default=60.0)
    parser.add_argument('--seconds', type=float, default=60.0)
    parser.add_argument('--bmc', default='ipmi')
    args = parser.parse_args()
    on = _measure(args.hosts, args.interval, args.seconds, args.bmc)
    off = _measure(args.hosts, 0, args.seconds, args.bmc)
    scale = args.interval / 300.0
    cost = on['leader_cpu_percent'] - off['leader_cpu_percent']
    print(json.dumps({
        'benchmark': 'fencing-readiness-cost', 'hosts': args.hosts,
        'bmc': args.bmc, 'checks_on': on, 'checks_off': off,
        'checks_cpu_percent': round(cost, 2),
        'at_default_interval_300s': {
            'bmc_reads_per_second': round(
                on['bmc_reads_per_second'] * scale, 2),
            'checks_cpu_percent': round(cost * scale, 2)},
        'cpu_count': os.cpu_count()}, indent=2))


if __name__ == '__main__':
    main()
