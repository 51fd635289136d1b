"""``freezer-dr-demo``: the embedded default, end to end, on one machine.

Local etcd, a simulated cloud (Keystone, Nova, one IPMI or Redfish BMC per
host, an SMTP sink) and three freezer-dr replicas; then a host fails, the
leader is killed mid-evacuation, and the recovery finishes anyway. Exits 0
only if every instance of the failed host ends on another host in its
original power state.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence

from freezer_dr.demo import scenario
from freezer_dr.demo.cluster import Cluster


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='freezer-dr-demo', description=__doc__.split('\n\n')[0])
    parser.add_argument('--hosts', type=int, default=6,
                        help='Compute hosts in the simulated cloud.')
    parser.add_argument('--instances', type=int, default=30,
                        help='Instances spread over the hosts.')
    parser.add_argument('--projects', type=int, default=3,
                        help='Projects (each with users) owning them.')
    parser.add_argument('--mode', default='crash',
                        choices=['crash', 'power', 'partition'],
                        help='How the host fails (default: crash, with '
                             'its BMC still on).')
    parser.add_argument('--rebuild-time', type=float, default=4.0,
                        help='Seconds one simulated rebuild takes.')
    parser.add_argument('--bmc', default='ipmi',
                        choices=['ipmi', 'redfish', 'mixed'],
                        help='BMCs of the simulated hosts: IPMI, Redfish '
                             'over HTTPS, or mixed (alternating per host).')
    parser.add_argument('--no-kill', action='store_true',
                        help='Do not kill the leader mid-evacuation.')
    parser.add_argument('--workdir',
                        help='Keep logs, configs and state here (default: '
                             'a temporary directory, removed on success).')
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    workdir = args.workdir or tempfile.mkdtemp(prefix='freezer-dr-demo-')
    display = scenario.Display()
    display.say(f'starting etcd, a simulated cloud ({args.hosts} hosts, '
                f'{args.instances} instances, {args.projects} projects) and '
                f'3 freezer-dr replicas in {workdir}')
    cluster = Cluster(workdir, hosts=args.hosts, instances=args.instances,
                      projects=args.projects, bmc=args.bmc,
                      cloud_options={'rebuild_time': args.rebuild_time})
    try:
        cluster.start()
        scenario.wait_for_cloud_view(cluster)
        outcome = scenario.run(cluster, mode=args.mode,
                               kill_leader=not args.no_kill, display=display)
    except (TimeoutError, RuntimeError) as error:
        display.say(f'demo failed: {error} (logs in {workdir})')
        return 1
    finally:
        cluster.close()
    for line in scenario.summary(outcome):
        display.say(line)
    if outcome.ok and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    elif not outcome.ok:
        display.say(f'logs and state kept in {workdir}')
    return 0 if outcome.ok else 1


if __name__ == '__main__':
    sys.exit(main())
