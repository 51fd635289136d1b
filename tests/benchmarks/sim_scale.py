"""Scale of the simulated cloud: start-up and list times, as JSON.

Run: ``python -m tests.benchmarks.sim_scale [--hosts 1000]
[--instances 10000] [--repeat 5] [--bmcs]``. Starts ``freezer-dr-sim run``
in a temp dir, then times the full services list, the full servers list
(``all_tenants``, paginated at 1000 like Nova) and one host's servers, and
prints one JSON object. Lists are timed twice: raw HTTP through the
keystoneauth session (the simulator's cost) and through openstacksdk
resources (what freezer-dr pays; the SDK builds ~500 servers/s on this
machine, whatever the server). Figures, not asserts.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import typing as t

from freezer_dr.simulator.handle import SimCloudHandle


def timed(fn: t.Callable[[], t.Any], repeat: int) -> tuple[dict, t.Any]:
    samples, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return ({'median_s': round(statistics.median(samples), 4),
             'max_s': round(max(samples), 4)}, result)


def raw_servers(conn: t.Any) -> int:
    """Page through ``GET /servers/detail?all_tenants=1``; count them."""
    url: str | None = '/servers/detail?all_tenants=1'
    count = 0
    while url:
        body = conn.compute.get(url, microversion='2.94').json()
        count += len(body['servers'])
        links = body.get('servers_links') or []
        url = links[0]['href'] if links else None
    return count


def evacuate_host(cloud: SimCloudHandle, conn: t.Any,
                  count: int) -> dict[str, t.Any]:
    """Evacuate ``count`` servers of a dead host at once; time until every
    one is on another host with no task state (rebuild time 1 s)."""
    host = cloud.hosts[-1]
    ids = [cloud.boot(f'bench-{i}', host) for i in range(count)]
    cloud.fail(host, 'power')
    (svc,) = conn.compute.services(binary='nova-compute', host=host)
    conn.compute.update_service_forced_down(svc, forced=True)
    started = time.perf_counter()
    for server_id in ids:
        conn.compute.evacuate_server(server_id)
    requested = time.perf_counter() - started
    while True:
        moved = [s for s in conn.compute.servers(
            all_projects=True, compute_host=host)
            if s.id in set(ids)]
        if not moved:
            break
        time.sleep(0.2)
    done = time.perf_counter() - started
    migrations = [m for m in conn.compute.migrations(source_compute=host)
                  if m.status == 'done']
    return {'servers': count, 'requests_s': round(requested, 2),
            'all_moved_s': round(done, 2), 'done_migrations': len(migrations)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, default=1000)
    parser.add_argument('--instances', type=int, default=10000)
    parser.add_argument('--repeat', type=int, default=5)
    parser.add_argument('--evacuate', type=int, default=200,
                        help='servers evacuated at once from one host '
                             '(rebuild time 1 s)')
    parser.add_argument('--bmcs', action='store_true',
                        help='also start one IPMI BMC per host')
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='sim-scale-') as d:
        started = time.perf_counter()
        cloud = SimCloudHandle(d, hosts=args.hosts,
                               instances=args.instances, bmcs=args.bmcs)
        with cloud:
            start_s = time.perf_counter() - started
            conn = cloud.connection()
            list(conn.compute.services())          # authenticate
            services_http, _ = timed(lambda: conn.compute.get(
                '/os-services', microversion='2.94').json(), args.repeat)
            page_http, _ = timed(lambda: conn.compute.get(
                '/servers/detail?all_tenants=1', microversion='2.94').json(),
                args.repeat)
            services, svc = timed(
                lambda: list(conn.compute.services()), args.repeat)
            raw, count = timed(lambda: raw_servers(conn), args.repeat)
            servers, srv = timed(lambda: list(conn.compute.servers(
                all_projects=True)), 1)
            host = cloud.hosts[0]
            one_host, mine = timed(lambda: list(conn.compute.servers(
                all_projects=True, compute_host=host)), args.repeat)
            hypervisors, _ = timed(lambda: list(conn.compute.hypervisors(
                details=True)), args.repeat)
            evacuation = evacuate_host(cloud, conn, args.evacuate)
        print(json.dumps({
            'benchmark': 'sim_scale', 'hosts': args.hosts,
            'instances': args.instances, 'bmcs': args.bmcs,
            'start_s': round(start_s, 2),
            'services_list_http': services_http,
            'services_list_sdk': dict(services, count=len(svc)),
            'servers_page_1000_http': page_http,
            'servers_list_all_http': dict(raw, count=count),
            'servers_list_all_sdk': dict(servers, count=len(srv)),
            'servers_list_one_host': dict(one_host, count=len(mine)),
            'hypervisors_detail': hypervisors,
            'evacuation': evacuation,
        }))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
