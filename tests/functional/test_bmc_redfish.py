"""Redfish BMCs of the simulator: the BMC process serving both kinds, and
``freezer-dr-sim run --bmc redfish|mixed`` end to end."""
from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import requests
import sushy
import yaml
from pyghmi.ipmi import command as ipmi_command
from sushy import auth as sushy_auth

from freezer_dr.engine import fencing as fence_levels
from freezer_dr.fencers.inventory import load_inventory
from freezer_dr.fencers.ipmi import IpmiFencer
from freezer_dr.fencers.redfish import RedfishFencer
from tests.bmcproc import BmcProcess
from tests.functional.test_simulator_nova import service
from tests.functional.test_simulator_nova import wait_for


@pytest.fixture(scope='module')
def bmcs(tmp_path_factory):
    proc = BmcProcess(str(tmp_path_factory.mktemp('bmc')), [
        {'host': 'rf-a', 'username': 'admin', 'password': 'pw-rf-a',
         'kind': 'redfish'},
        {'host': 'ip-a', 'username': 'admin', 'password': 'pw-ip-a'}])
    yield proc
    proc.stop()


def test_ready_file_and_control_api_name_each_bmc_kind(bmcs):
    assert bmcs.ready['kinds'] == {'rf-a': 'redfish', 'ip-a': 'ipmi'}
    state = bmcs.state()
    assert {h: s['kind'] for h, s in state.items()} == bmcs.ready['kinds']
    assert state['rf-a']['port'] == bmcs.ports['rf-a']
    assert 'pw-rf-a' not in json.dumps(state)
    assert bmcs.ca_file and open(bmcs.ca_file).read().startswith(
        '-----BEGIN CERTIFICATE-----')


def test_power_log_lines_are_alike_for_both_kinds(bmcs):
    rf = sushy.Sushy(f'https://127.0.0.1:{bmcs.ports["rf-a"]}',
                     verify=bmcs.ca_file,
                     auth=sushy_auth.BasicAuth('admin', 'pw-rf-a'))
    system = rf.get_system()
    system.reset_system(sushy.ResetType.GRACEFUL_SHUTDOWN)
    system.reset_system(sushy.ResetType.ON)
    system.reset_system(sushy.ResetType.FORCE_OFF)
    ipmi = ipmi_command.Command('127.0.0.1', b'admin', b'pw-ip-a',
                                port=bmcs.ports['ip-a'])
    ipmi.set_power('shutdown', wait=False)
    ipmi.set_power('on', wait=False)
    ipmi.set_power('off', wait=False)
    ipmi.ipmi_session.logout()
    log = bmcs.log()
    assert {frozenset(e) for e in log} == {
        frozenset({'t', 'host', 'command', 'result', 'power_after'})}
    for host in ('rf-a', 'ip-a'):
        assert [(e['command'], e['power_after']) for e in log
                if e['host'] == host and e['command'] != 'status'] == [
            ('soft', 'off'), ('on', 'on'), ('off', 'off')]
        assert ('status', 'on') in [(e['command'], e['power_after'])
                                    for e in log if e['host'] == host]


def test_redfish_faults_through_the_control_api(bmcs):
    url = f'https://127.0.0.1:{bmcs.ports["rf-a"]}/redfish/v1/Systems'
    bmcs.fault('rf-a', 'wrong-password')
    assert requests.get(url, auth=('admin', 'pw-rf-a'), verify=bmcs.ca_file,
                        timeout=5).status_code == 401
    bmcs.fault('rf-a', 'slow', delay=0.5)
    started = time.monotonic()
    assert requests.get(url, auth=('admin', 'pw-rf-a'), verify=bmcs.ca_file,
                        timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.5
    bmcs.fault('rf-a', 'unreachable')
    with pytest.raises(requests.Timeout):
        requests.get(url, auth=('admin', 'pw-rf-a'), verify=bmcs.ca_file,
                     timeout=0.5)
    bmcs.fault('rf-a', 'none')
    assert requests.get(url, auth=('admin', 'pw-rf-a'), verify=bmcs.ca_file,
                        timeout=5).status_code == 200


def test_mixed_cloud_alternates_bmcs_and_redfish_off_stops_the_host(
        sim_cloud_factory):
    cloud = sim_cloud_factory(hosts=3, instances=3, bmc='mixed')
    assert cloud.bmc_kinds() == {'compute-1': 'ipmi',
                                 'compute-2': 'redfish',
                                 'compute-3': 'ipmi'}
    with open(cloud.nodes_yaml) as f:
        nodes = yaml.safe_load(f)['nodes']
    level = nodes['compute-2']['fencing'][0]
    assert level['driver'] == 'redfish'
    port = cloud.bmc('compute-2')['port']
    assert level['address'] == f'https://127.0.0.1:{port}'
    assert level['ca_file'] == cloud.endpoints['bmc_ca_file']
    assert nodes['compute-1']['fencing'][0]['driver'] == 'ipmi'
    inventory = load_inventory(cloud.nodes_yaml)
    assert isinstance(inventory.levels('compute-2')[0], RedfishFencer)
    assert isinstance(inventory.levels('compute-3')[0], IpmiFencer)

    cli = [sys.executable, '-m', 'freezer_dr.cmd.sim', '--state-dir',
           cloud.state_dir, 'inject', '--bmc', 'compute-2', '--bmc-mode',
           'stuck']
    subprocess.run(cli, check=True, capture_output=True, timeout=60)
    stuck = fence_levels.fence_node('compute-2',
                                    inventory.levels('compute-2'),
                                    30)
    assert not stuck.success and 'power still on' in stuck.detail
    assert cloud.power('compute-2') == 'on'
    cloud.bmc_fault('compute-2', 'none')

    result = fence_levels.fence_node('compute-2',
                                     inventory.levels('compute-2'),
                                     30)
    assert result.success and result.level == 'redfish'
    assert cloud.power('compute-2') == 'off'
    conn = cloud.connection()
    wait_for(lambda: service(conn, 'compute-2').state == 'down',
             cloud.service_down_time + 10, 'compute-2 down')
