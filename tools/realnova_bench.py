"""Figures of the real-Nova box, printed as JSON (no asserts).

Usage::

    python -m tools.realnova_bench [--hosts 4] [--servers 8]

Measures: box start (process start to endpoints.json), concurrent boots
through the control API, one host's evacuation of all its servers in
parallel while a client lists servers non-stop, and the box's RSS.
"""

import argparse
import json
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from tests import cloud_helpers as helpers
from tests.novabox.handle import RealNovaCloud


def _rss_mb(pid: int) -> float:
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def run(hosts: int, servers: int) -> dict:
    figures: dict = {'hosts': hosts, 'servers': servers}
    with tempfile.TemporaryDirectory() as state_dir, \
            RealNovaCloud(state_dir, hosts=hosts) as cloud:
        figures['start_s'] = cloud.start_seconds
        conn = cloud.connection()
        source = cloud.hosts[0]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=servers) as pool:
            ids = list(pool.map(
                lambda i: cloud.boot(f'bench-{i}', source), range(servers)))
        figures['concurrent_boots_s'] = round(time.monotonic() - started, 2)

        cloud.fail(source, 'crash')
        service = helpers.service_of(conn, source)
        conn.compute.update_service_forced_down(service, forced=True)
        stop = threading.Event()
        lists = []

        def list_servers() -> None:
            while not stop.is_set():
                began = time.monotonic()
                list(conn.compute.servers(all_projects=True))
                lists.append(time.monotonic() - began)

        lister = threading.Thread(target=list_servers, daemon=True)
        lister.start()
        started = time.monotonic()
        for server_id in ids:
            conn.compute.evacuate_server(server_id)
        for server_id in ids:
            helpers.wait_until(
                lambda sid=server_id: helpers.server_settled_off(
                    conn, sid, source), 600, f'{server_id} evacuated')
        figures['evacuate_all_s'] = round(time.monotonic() - started, 2)
        stop.set()
        lister.join()
        figures['list_servers_max_s'] = round(max(lists), 3)
        figures['box_rss_mb'] = _rss_mb(cloud.pid)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hosts', type=int, default=4)
    parser.add_argument('--servers', type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(run(args.hosts, args.servers)))


if __name__ == '__main__':
    main()
