"""Partition figures on three controllers (network namespaces, TLS etcd).

``python -m tests.benchmarks.controllers_partition --runs 3`` (root) cuts
the leader's controller off the cluster network and prints JSON: seconds
from the cut until the old leader stopped answering 200 on ``/leader``,
until a new leader answered 200, and the overlap (must be 0).
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from tests import controller_deployment as deployment
from tests import netns
from tests import replicas as rp


def one_run(workdir: str) -> dict[str, float]:
    controllers = netns.Controllers(3).create()
    etcd = None
    replicas = None
    try:
        etcd = deployment.etcd_cluster(controllers, f'{workdir}/etcd')
        etcd.start()
        replicas = deployment.ControllerReplicas(workdir, controllers, etcd)
        replicas.start()
        leader = replicas.wait_for_leader(timeout=60)
        with rp.LeadershipMonitor(replicas, interval=0.05) as monitor:
            time.sleep(1.0)
            cut = time.monotonic()
            leader.controller.cut()
            new = replicas.wait_for_leader(timeout=60, exclude=[leader])
            time.sleep(0.5)
        stopped = monitor.last_leading(leader.member_id)
        started = monitor.first_leading(new.member_id, after=cut)
        return {'old_leader_stopped_after': round(stopped - cut, 3),
                'new_leader_after': round(started - cut, 3),
                'overlap': round(monitor.overlap(), 3)}
    finally:
        if replicas is not None:
            replicas.stop()
        if etcd is not None:
            etcd.close()
        controllers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--runs', type=int, default=3)
    args = parser.parse_args()
    netns.probe()
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix='fdr-ctl-') as workdir:
            runs.append(one_run(workdir))
    summary = {key: statistics.median(r[key] for r in runs)
               for key in runs[0]}
    print(json.dumps({'lease_ttl': deployment.TTL, 'runs': runs,
                      'median': summary}, indent=2))


if __name__ == '__main__':
    main()
