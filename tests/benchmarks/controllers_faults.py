"""Figures of a site of three controllers living through faults.

``python -m tests.benchmarks.controllers_faults --runs 10`` (root) builds
the controllers tier's site (network namespaces, a 3-member etcd over TLS
with client certificates, the simulated cloud in a fourth namespace, one
replica per controller) and, for each fault class of
:data:`tests.controller_site.FAULTS`, ``--runs`` times: injects it, fails
a host while it lasts, heals. It prints JSON: per fault class the seconds
until a new leader acted (answered 200 on ``/leader``) and until the old
one stopped, the overlap (must be 0), the seconds from the host failure
to its recovery's end, and every ground-truth violation (must be none).
Then the etcd requests per second of the leader and of a standby, idle,
each counted on the etcd member it talks to (its own controller's, the
first of its three endpoints) from that member's gRPC metrics.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from tests import controller_site
from tests import netns

FIGURES = ('new_leader_after', 'old_leader_stopped_after',
           'recovered_after', 'overlap', 'leaderless')


def spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {'min': min(values), 'median': round(statistics.median(values),
                                                2), 'max': max(values)}


def started_calls(site: controller_site.Site, member) -> float:
    """gRPC calls the etcd ``member`` has started (every client request,
    the HTTP gateway's included; raft traffic between members is not)."""
    with site.etcd.session() as session:
        text = session.get(member.client_url + '/metrics', timeout=5).text
    return sum(float(line.rsplit(' ', 1)[1]) for line in text.splitlines()
               if line.startswith('grpc_server_started_total{'))


def etcd_rates(site: controller_site.Site, seconds: float) -> dict:
    """Requests per second each replica sends to its own member."""
    site.make_whole()
    leader = site.replicas.wait_for_leader(timeout=60)
    members = {r.member_id: site.etcd.members[r.controller.index]
               for r in site.replicas}
    first = {m: started_calls(site, member) for m, member in members.items()}
    time.sleep(seconds)
    last = {m: started_calls(site, member) for m, member in members.items()}
    rates = {m: round((last[m] - first[m]) / seconds, 2) for m in members}
    return {'seconds': seconds, 'leader': rates[leader.member_id],
            'standbys': sorted(v for m, v in rates.items()
                               if m != leader.member_id)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--faults', default=','.join(controller_site.FAULTS),
                        help='comma-separated fault classes')
    parser.add_argument('--rate-seconds', type=float, default=60.0)
    args = parser.parse_args()
    netns.probe()
    out: dict = {'lease_ttl': controller_site.TTL, 'runs': args.runs,
                 'faults': {}}
    with tempfile.TemporaryDirectory(prefix='fdr-site-') as workdir:
        site = controller_site.Site(workdir).start()
        try:
            out['etcd_requests_per_second'] = etcd_rates(
                site, args.rate_seconds)
            for name in args.faults.split(','):
                fault = controller_site.FAULTS[name]
                runs = [controller_site.run_fault(site, fault)
                        for _ in range(args.runs)]
                out['faults'][name] = {
                    **{key: spread([getattr(r, key) for r in runs
                                    if getattr(r, key) is not None])
                       for key in FIGURES},
                    'recovered_during_fault': sum(
                        r.recovered_during_fault for r in runs),
                    'violations': [v for r in runs for v in r.violations]}
                print(json.dumps({name: out['faults'][name]}), flush=True)
        finally:
            site.close()
    print(json.dumps(out, indent=2))


if __name__ == '__main__':
    main()
