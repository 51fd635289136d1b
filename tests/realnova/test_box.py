"""The real-Nova box itself: state dir, control API, failures, shutdown."""

import json
import os
import stat
import time
import urllib.error
import urllib.request

import pytest
import requests
import yaml

from freezer_dr.simulator.handle import SimError
from tests import cloud_helpers as helpers
from tests.fixtures.realnova import requires_nova
from tests.novabox.handle import RealNovaCloud

pytestmark = requires_nova


def _control(cloud, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(cloud.control_url + path, data=data,
                                     method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_state_dir_holds_private_clouds_yaml_and_inventory(realnova_cloud):
    cloud = realnova_cloud
    for path in (cloud.clouds_yaml, cloud.nodes_yaml):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    with open(cloud.clouds_yaml) as f:
        entry = yaml.safe_load(f)['clouds']['realnova']
    assert entry['auth_type'] == 'password'
    assert entry['auth']['auth_url'] == cloud.keystone_url
    # the compute endpoint comes from Keystone's catalog
    conn = cloud.connection()
    assert conn.compute.get_endpoint().rstrip('/') == cloud.nova_url
    with open(cloud.nodes_yaml) as f:
        nodes = yaml.safe_load(f)['nodes']
    assert sorted(nodes) == sorted(cloud.hosts)
    for host, node in nodes.items():
        level = node['fencing'][0]
        assert level['driver'] == 'ipmi'
        assert level['port'] == cloud.bmc(host)['port']
        assert stat.S_IMODE(os.stat(level['password_file']).st_mode) == 0o600
    # The admin password and BMC passwords never reach a command line.
    secrets = [entry['auth']['password']] + [
        cloud.bmc(h)['password'] for h in cloud.hosts]
    for pid in (cloud.pid, _bmc_pid(cloud), cloud.endpoints['keystone_pid']):
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            cmdline = f.read().decode()
        assert not [s for s in secrets if s in cmdline]


def test_keystone_is_real_and_nova_validates_against_it(realnova_cloud):
    cloud = realnova_cloud
    conn = cloud.connection()
    token = conn.session.get_token()
    # Keystone's own token validation (what auth_token asks it)
    info = requests.get(cloud.keystone_url + '/auth/tokens', timeout=30,
                        headers={'X-Auth-Token': token,
                                 'X-Subject-Token': token})
    assert info.status_code == 200
    assert {r['name'] for r in info.json()['token']['roles']} >= {'admin'}
    catalog = {s['type'] for s in info.json()['token']['catalog']}
    assert {'identity', 'compute'} <= catalog
    # Nova accepts a token Keystone issued, refuses one it revoked
    # (asked before Nova has seen it: auth_token caches what it validated)
    assert requests.get(cloud.nova_url + '/servers', timeout=30, headers={
        'X-Auth-Token': token}).status_code == 200
    revoked = helpers.connect(cloud).session.get_token()
    assert requests.delete(cloud.keystone_url + '/auth/tokens', timeout=30,
                           headers={'X-Auth-Token': token,
                                    'X-Subject-Token': revoked}
                           ).status_code == 204
    refused = requests.get(cloud.nova_url + '/servers', timeout=30,
                           headers={'X-Auth-Token': revoked})
    assert refused.status_code == 401
    assert cloud.keystone_url.rsplit('/v3', 1)[0] in refused.headers[
        'WWW-Authenticate']


def test_cells_can_be_made_unreachable_and_back(realnova_cloud):
    cloud = realnova_cloud
    assert cloud.cells == {'cell1': ['compute-1', 'compute-3'],
                           'cell2': ['compute-2', 'compute-4']}
    conn = cloud.connection(compute_api_version='2.94')
    try:
        answer = cloud.control('POST', '/sim/cells/cell2', {'down': True})
        assert answer['cell'] == {'name': 'cell2', 'down': True,
                                  'hosts': ['compute-2', 'compute-4']}
        states = {s.host: s.state for s in conn.compute.services(
            binary='nova-compute')}
        assert states == {'compute-1': 'up', 'compute-2': None,
                          'compute-3': 'up', 'compute-4': None}
    finally:
        cloud.control('POST', '/sim/cells/cell2', {'down': False})
    states = {s.host: s.state for s in conn.compute.services(
        binary='nova-compute')}
    assert set(states.values()) == {'up'}
    assert _control(cloud, 'POST', '/sim/cells/cell9',
                    {'down': True})[0] == 404
    assert _control(cloud, 'POST', '/sim/cells/cell2',
                    {'down': 'yes'})[0] == 400


def test_control_api_rejects_bad_input(realnova_cloud):
    cloud = realnova_cloud
    assert _control(cloud, 'POST', '/sim/hosts/nope/fail',
                    {'mode': 'crash'})[0] == 404
    assert _control(cloud, 'POST', f'/sim/hosts/{cloud.hosts[0]}/fail',
                    {'mode': 'meteor'})[0] == 400
    assert _control(cloud, 'POST', f'/sim/hosts/{cloud.hosts[0]}/power',
                    {'power': 'sideways'})[0] == 400
    assert _control(cloud, 'POST', '/sim/servers', {'name': 'x'})[0] == 400
    assert _control(cloud, 'GET', '/sim/nothing')[0] == 404
    with pytest.raises(SimError):
        cloud.fail(cloud.hosts[0], 'meteor')
    assert _control(cloud, 'POST', '/sim/faults', {'latency': {}})[0] == 404
    status, body = _control(cloud, 'GET', '/sim/status')
    assert status == 200
    assert sorted(h['host'] for h in body['hosts']) == sorted(cloud.hosts)
    assert all(h['power'] == 'on' and h['failure'] is None
               and h['service_state'] == 'up' for h in body['hosts'])


def test_power_failure_then_recover(realnova_cloud):
    cloud, host = realnova_cloud, realnova_cloud.hosts[-1]
    conn = cloud.connection()
    cloud.fail(host, 'power')
    assert cloud.power(host) == 'off'
    helpers.wait_until(lambda: helpers.service_of(conn, host).state == 'down',
                       cloud.service_down_time + 30, f'{host} down')
    cloud.recover(host)
    assert cloud.power(host) == 'on'
    helpers.wait_until(lambda: helpers.service_of(conn, host).state == 'up',
                       30, f'{host} up again')


def test_boot_into_each_status_on_the_named_host(realnova_cloud):
    cloud = realnova_cloud
    conn = cloud.connection()
    statuses = ('ACTIVE', 'SHUTOFF', 'ERROR')
    for status, host in zip(statuses, cloud.hosts[:3], strict=True):
        server_id = cloud.boot(f'box-{status.lower()}', host,
                               project='box-project', status=status,
                               metadata={'HA_Enabled': True})
        server = conn.compute.get_server(server_id)
        assert (server.status, server.compute_host) == (status, host)
        assert server.project_id == conn.identity.find_project(
            'box-project', ignore_missing=False).id
        assert server.metadata == {'HA_Enabled': 'True'}


def test_close_stops_the_box_and_its_bmcs(tmp_path):
    cloud = RealNovaCloud(str(tmp_path), hosts=1, service_down_time=6)
    cloud.start()
    try:
        box_pid, bmc_pid = cloud.pid, _bmc_pid(cloud)
        keystone_pid = cloud.endpoints['keystone_pid']
        assert cloud.start_seconds is not None
    finally:
        cloud.close()
    deadline = time.monotonic() + 10
    alive = {box_pid, bmc_pid, keystone_pid}
    while alive and time.monotonic() < deadline:
        alive = {pid for pid in alive if _running(pid)}
        time.sleep(0.1)
    assert not alive


def _bmc_pid(cloud) -> int:
    with open(os.path.join(cloud.state_dir, 'bmc.ready')) as f:
        return json.load(f)['pid']


def _running(pid: int) -> bool:
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split(') ')[1][0] != 'Z'
    except FileNotFoundError:
        return False
