"""``freezer-dr-sim``: the state directory it writes and its subcommands,
and IPMI power commands through the BMC process changing the cloud."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import yaml
from pyghmi.ipmi import command as ipmi_command

from tests.functional.test_simulator_nova import service
from tests.functional.test_simulator_nova import wait_for


def cli(cloud, *args: str) -> str:
    return subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.sim', '--state-dir',
         cloud.state_dir, *args], check=True, capture_output=True,
        text=True, timeout=60).stdout


def test_state_dir_files(sim_cloud):
    d = sim_cloud.state_dir
    for name in ('clouds.yaml', 'nodes.yaml', 'freezer-dr.conf'):
        mode = stat.S_IMODE(os.stat(os.path.join(d, name)).st_mode)
        assert mode == 0o600, name
    nodes = yaml.safe_load(open(os.path.join(d, 'nodes.yaml')))['nodes']
    assert sorted(nodes) == sorted(sim_cloud.hosts)
    level = nodes['compute-1']['fencing'][0]
    assert level['driver'] == 'ipmi' and level['port'] > 0
    assert stat.S_IMODE(os.stat(level['password_file']).st_mode) == 0o600
    conf = open(os.path.join(d, 'freezer-dr.conf')).read()
    assert f'clouds_yaml = {d}/clouds.yaml' in conf
    assert f'smtp_port = {sim_cloud.smtp[1]}' in conf
    password = open(level['password_file']).read()
    for name in ('freezer-dr.conf', 'endpoints.json', 'sim.log'):
        assert password not in open(os.path.join(d, name)).read()


def test_cli_fail_recover_status_boot_inject(sim_cloud):
    conn = sim_cloud.connection()
    cli(sim_cloud, 'fail', 'compute-2', '--mode', 'partition')
    status = json.loads(cli(sim_cloud, 'status', '-f', 'json'))
    row = {h['host']: h for h in status['hosts']}['compute-2']
    assert (row['power'], row['failure'], row['heartbeat']) == (
        'on', 'partition', False)
    assert 'compute-2' in cli(sim_cloud, 'status')
    cli(sim_cloud, 'recover', 'compute-2')
    assert service(conn, 'compute-2').state == 'up'
    out = json.loads(cli(sim_cloud, 'boot', 'cli-vm', '--host', 'compute-3',
                         '--status', 'SHUTOFF', '--metadata',
                         'HA_Enabled=true'))
    server = conn.compute.get_server(out['server']['id'])
    assert (server.status, server.compute_host, server.metadata) == (
        'SHUTOFF', 'compute-3', {'HA_Enabled': 'true'})
    faults = json.loads(cli(sim_cloud, 'inject', '--rebuild-time', '2.5',
                            '--latency', 'keystone=0.01'))
    assert faults['rebuild_time'] == 2.5
    assert faults['latency'] == {'keystone': 0.01}
    assert cli(sim_cloud, 'power', 'compute-1').strip() == 'on'


def test_sigterm_stops_simulator_and_bmc_process(sim_cloud):
    bmc_pid = sim_cloud.endpoints['bmc_pid']
    os.kill(sim_cloud.pid, 15)
    wait_for(lambda: not _alive(bmc_pid), 20, 'BMC process gone')
    assert not os.path.exists(os.path.join(sim_cloud.state_dir,
                                           'bmc.ready'))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of the (dead) simulator counts as gone
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().split()[2] != 'Z'
    except FileNotFoundError:
        return False


def test_ipmi_power_off_stops_the_heartbeat(sim_cloud):
    conn = sim_cloud.connection()
    bmc = sim_cloud.bmc('compute-1')
    ipmi = ipmi_command.Command(
        bmc=bmc['address'], port=bmc['port'],
        userid=bmc['username'].encode(), password=bmc['password'].encode())
    assert ipmi.get_power()['powerstate'] == 'on'
    ipmi.set_power('off', wait=False)
    assert ipmi.get_power()['powerstate'] == 'off'
    assert sim_cloud.power('compute-1') == 'off'
    wait_for(lambda: service(conn, 'compute-1').state == 'down',
             sim_cloud.service_down_time + 10, 'compute-1 down')
    log = sim_cloud.bmc_log()
    assert any(e['host'] == 'compute-1' and e['command'] == 'off'
               and e['result'] == 'ok' for e in log)
    ipmi.set_power('on', wait=False)
    wait_for(lambda: service(conn, 'compute-1').state == 'up', 15,
             'compute-1 up again')
    ipmi.ipmi_session.logout()


def test_bmc_fault_injection_reaches_the_bmc_process(sim_cloud):
    out = json.loads(cli(sim_cloud, 'inject', '--bmc', 'compute-2',
                         '--bmc-mode', 'stuck').splitlines()[-1])
    assert out['fault']['mode'] == 'stuck'
    bmc = sim_cloud.bmc('compute-2')
    ipmi = ipmi_command.Command(
        bmc=bmc['address'], port=bmc['port'],
        userid=bmc['username'].encode(), password=bmc['password'].encode())
    ipmi.set_power('off', wait=False)
    assert sim_cloud.power('compute-2') == 'on'     # stuck: never off
    sim_cloud.bmc_fault('compute-2', 'none')
    ipmi.set_power('off', wait=False)
    assert sim_cloud.power('compute-2') == 'off'
    ipmi.ipmi_session.logout()


def test_close_cleans_up_the_bmc_process_of_a_killed_simulator(sim_cloud):
    bmc_pid = sim_cloud.endpoints['bmc_pid']
    os.kill(sim_cloud.pid, 9)
    sim_cloud.close()
    assert not _alive(bmc_pid)


def test_an_address_not_of_this_host_is_refused_by_name(tmp_path):
    """A --bind-host this machine does not have: exit 2 and one line
    naming the option, not a traceback in the log."""
    run = subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.sim', '--state-dir',
         str(tmp_path), 'run', '--no-bmc', '--bind-host', '192.0.2.1'],
        capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip() == ('freezer-dr-sim: cannot listen: '
                                  '--bind-host 192.0.2.1 is no address of '
                                  'this host')

