"""The real-Nova box itself: state dir, control API, failures, shutdown."""

import json
import os
import stat
import time
import urllib.error
import urllib.request

import pytest
import yaml

from freezer_dr.simulator.handle import SimError
from tests.contract import helpers
from tests.realnova.conftest import requires_nova
from tests.realnova.handle import RealNovaCloud

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
    assert entry['auth_type'] == 'admin_token'
    assert entry['auth']['endpoint'] == cloud.nova_url
    with open(cloud.nodes_yaml) as f:
        nodes = yaml.safe_load(f)['nodes']
    assert sorted(nodes) == sorted(cloud.hosts)
    for host, node in nodes.items():
        level = node['fencing'][0]
        assert level['driver'] == 'ipmi'
        assert level['port'] == cloud.bmc(host)['port']
        assert stat.S_IMODE(os.stat(level['password_file']).st_mode) == 0o600
    # The token and BMC passwords never reach a command line.
    secrets = [entry['auth']['token']] + [
        cloud.bmc(h)['password'] for h in cloud.hosts]
    for pid in (cloud.pid, _bmc_pid(cloud)):
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            cmdline = f.read().decode()
        assert not [s for s in secrets if s in cmdline]


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
        assert server.project_id == 'box-project'
        assert server.metadata == {'HA_Enabled': 'True'}


def test_close_stops_the_box_and_its_bmcs(tmp_path):
    cloud = RealNovaCloud(str(tmp_path), hosts=1, service_down_time=6)
    cloud.start()
    try:
        box_pid, bmc_pid = cloud.pid, _bmc_pid(cloud)
        assert cloud.start_seconds is not None
    finally:
        cloud.close()
    deadline = time.monotonic() + 10
    alive = {box_pid, bmc_pid}
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
