"""Cost of one nova monitor look against the simulator, as JSON.

    python -m tests.benchmarks.nova_monitor_look [HOSTS ...]

For each host count: median wall time of a look (5 looks after a warm-up)
and API requests per look, with and without the hypervisor check.
"""
from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time

from freezer_dr import cloud
from freezer_dr.monitors.nova import NovaMonitor
from freezer_dr.simulator.handle import SimCloudHandle
from tests import nova_support as support

LOOKS = 5


def measure(hosts: int) -> dict:
    with tempfile.TemporaryDirectory() as state_dir:
        handle = SimCloudHandle(state_dir, hosts=hosts, instances=0,
                                bmcs=False).start()
        try:
            out: dict = {'hosts': hosts}
            for check_hypervisor in (False, True):
                conf = support.config_for(handle, monitor_nova={
                    'check_hypervisor': check_hypervisor})
                monitor = NovaMonitor.from_config(conf, cloud.connect(conf))
                monitor.hosts()                  # auth and discovery
                log = support.RequestLog(monitor._conn)
                times = []
                for _ in range(LOOKS):
                    start = time.perf_counter()
                    seen = monitor.hosts()
                    times.append(time.perf_counter() - start)
                if len(seen) != hosts:
                    raise RuntimeError(f'saw {len(seen)} of {hosts} hosts')
                key = ('with_hypervisors' if check_hypervisor
                       else 'services_only')
                out[key] = {'median_s': round(statistics.median(times), 4),
                            'requests_per_look': len(log.entries) / LOOKS}
            return out
        finally:
            handle.close()


def main(argv: list[str]) -> None:
    for hosts in [int(a) for a in argv] or [100, 1000, 5000]:
        print(json.dumps(measure(hosts)), flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
