"""Side-by-side of the simulator and real Nova: the same raw HTTP calls.

Usage::

    python -m tools.compare_sim

Starts both clouds, makes the compute calls freezer-dr depends on (plus the
error answers) with the same microversion on each, and prints JSON: per
call, the status codes and every JSON path whose presence or type differs,
and the error bodies when they differ. Any difference is a simulator bug
unless it is about data (names, ids, addresses).
"""

import json
import tempfile

import requests

from freezer_dr.simulator.handle import SimCloudHandle
from tests import cloud_helpers as helpers
from tests.novabox.handle import RealNovaCloud

NO_SERVER = '00000000-0000-0000-0000-000000000000'


def paths(value, prefix: str = '') -> dict[str, str]:
    """Every JSON path of ``value`` with its type name (first list item)."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key, item in value.items():
            out.update(paths(item, f'{prefix}/{key}'))
        return out
    if isinstance(value, list):
        return paths(value[0], prefix + '[]') if value else {}
    return {prefix: type(value).__name__}


def calls(cloud) -> dict[str, tuple[int, object]]:
    """Make the calls on ``cloud``; name -> (status, JSON body)."""
    conn = cloud.connection()
    endpoint = conn.compute.get_endpoint().rstrip('/')
    token = conn.session.get_token()
    host = cloud.hosts[0]
    server_id = cloud.boot('compare', host)
    answers: dict[str, tuple[int, object]] = {}

    def call(name, path, version='2.94', method='GET', body=None):
        resp = requests.request(
            method, endpoint + path, json=body, timeout=60,
            headers={'X-Auth-Token': token,
                     'OpenStack-API-Version': f'compute {version}'})
        text = resp.text.replace(server_id, '<server>') or 'null'
        answers[name] = (resp.status_code, json.loads(text))

    action = f'/servers/{server_id}/action'
    call('services', '/os-services?binary=nova-compute')
    call('servers', f'/servers/detail?all_tenants=1&host={host}')
    call('server', f'/servers/{server_id}')
    call('hypervisors', '/os-hypervisors/detail', '2.87')
    call('unknown server', f'/servers/{NO_SERVER}')
    call('evacuate while up', action, method='POST', body={'evacuate': {}})
    call('start while active', action, method='POST', body={'os-start': None})
    call('unsupported version', '/servers', '9.99')
    cloud.fail(host, 'crash')
    conn.compute.update_service_forced_down(
        helpers.service_of(conn, host), forced=True)
    call('evacuate', action, method='POST', body={'evacuate': {}})
    helpers.wait_until(
        lambda: helpers.server_settled_off(conn, server_id, host), 120,
        'evacuation')
    call('migrations', '/os-migrations')
    return answers


def compare(sim: dict, real: dict) -> dict:
    report = {}
    for name, (real_status, real_body) in real.items():
        sim_status, sim_body = sim[name]
        s, r = paths(sim_body), paths(real_body)
        entry = {
            'status': [sim_status, real_status],
            'missing_in_sim': sorted(set(r) - set(s)),
            'extra_in_sim': sorted(set(s) - set(r)),
            'type_differs': {k: [s[k], r[k]] for k in sorted(set(s) & set(r))
                             if s[k] != r[k]}}
        if real_status >= 400 and sim_body != real_body:
            entry['bodies'] = [sim_body, real_body]
        report[name] = {k: v for k, v in entry.items() if v}
    return report


def main() -> None:
    with tempfile.TemporaryDirectory() as sim_dir, \
            tempfile.TemporaryDirectory() as real_dir, \
            SimCloudHandle(sim_dir) as sim, RealNovaCloud(real_dir) as real:
        print(json.dumps(compare(calls(sim), calls(real)), indent=1))


if __name__ == '__main__':
    main()
