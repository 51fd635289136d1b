"""The simulated BMC process, driven by real IPMI clients over UDP."""
from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from pyghmi import exceptions as pyghmi_exc
from pyghmi.ipmi import command as ipmi_command

from freezer_dr.exceptions import FenceFailed
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.ipmi import IpmiFencer
from freezer_dr.model import PowerState
from tests.bmcproc import BmcProcess

HOSTS = ['node-a', 'node-b', 'node-c', 'node-d', 'node-e']


@pytest.fixture(scope='module')
def bmcs(tmp_path_factory):
    proc = BmcProcess(str(tmp_path_factory.mktemp('bmc')), [
        {'host': h, 'username': 'admin', 'password': f'pw-{h}'}
        for h in HOSTS])
    yield proc
    proc.stop()


def client(bmcs, host, user=b'admin', password=None):
    password = password or f'pw-{host}'.encode()
    return ipmi_command.Command('127.0.0.1', user, password,
                                port=bmcs.ports[host])


def test_pyghmi_client_switches_power_and_every_command_is_logged(bmcs):
    ipmi = client(bmcs, 'node-a')
    assert ipmi.get_power()['powerstate'] == 'on'
    ipmi.set_power('off', wait=False)
    assert ipmi.get_power()['powerstate'] == 'off'
    ipmi.set_power('on', wait=False)
    assert ipmi.get_power()['powerstate'] == 'on'

    lines = [e for e in bmcs.log() if e['host'] == 'node-a']
    assert all(set(e) == {'t', 'host', 'command', 'result', 'power_after'}
               for e in lines)
    switches = [(e['command'], e['result'], e['power_after'])
                for e in lines if e['command'] != 'status']
    assert switches == [('off', 'ok', 'off'), ('on', 'ok', 'on')]
    assert ('status', 'ok', 'on') in [
        (e['command'], e['result'], e['power_after']) for e in lines]


def test_unknown_user_is_refused_at_once(bmcs):
    with pytest.raises(pyghmi_exc.IpmiException, match='Unauthorized name'):
        client(bmcs, 'node-b', user=b'nobody')


def test_wrong_password_fault_refuses_the_known_password(bmcs):
    bmcs.fault('node-c', 'wrong-password')
    with pytest.raises(pyghmi_exc.IpmiException, match='password'):
        client(bmcs, 'node-c')
    bmcs.fault('node-c', 'none')


def test_stuck_bmc_accepts_off_but_stays_on(bmcs):
    bmcs.fault('node-d', 'stuck')
    ipmi = client(bmcs, 'node-d')
    ipmi.set_power('off', wait=False)
    assert ipmi.get_power()['powerstate'] == 'on'
    offs = [e for e in bmcs.log()
            if e['host'] == 'node-d' and e['command'] == 'off']
    assert offs and offs[-1]['result'] == 'ok'
    assert offs[-1]['power_after'] == 'on'


def test_control_api_reports_state_and_rejects_bad_requests(bmcs):
    bmcs.fault('node-e', 'slow', delay=0.2)
    state = bmcs.state()
    assert set(state) == set(HOSTS)
    assert state['node-e']['fault'] == {'mode': 'slow', 'delay': 0.2}
    assert state['node-e']['port'] == bmcs.ports['node-e']
    assert 'pw-node-e' not in json.dumps(state)
    bmcs.set_power('node-e', 'off')
    assert bmcs.state()['node-e']['power'] == 'off'
    bmcs.fault('node-e', 'none')
    with pytest.raises(urllib.error.HTTPError) as bad_mode:
        bmcs.fault('node-e', 'melted')
    assert bad_mode.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as unknown:
        bmcs.fault('no-such-node', 'none')
    assert unknown.value.code == 404


@pytest.mark.skipif(not shutil.which('ipmitool'),
                    reason='ipmitool not installed')
def test_ipmitool_lanplus_works_unchanged(bmcs):
    def ipmitool(*args, password='pw-node-b'):
        return subprocess.run(
            ['ipmitool', '-I', 'lanplus', '-H', '127.0.0.1',
             '-p', str(bmcs.ports['node-b']), '-U', 'admin', '-E', *args],
            env={'IPMI_PASSWORD': password}, capture_output=True,
            text=True, timeout=30)

    assert 'Chassis Power is on' in ipmitool('power', 'status').stdout
    assert ipmitool('power', 'off').returncode == 0
    assert 'Chassis Power is off' in ipmitool('power', 'status').stdout
    assert ipmitool('power', 'status', password='wrong').returncode != 0
    assert bmcs.state()['node-b']['power'] == 'off'


class _SimPower(http.server.BaseHTTPRequestHandler):
    """A stand-in for the simulator's /sim/hosts/{host}/power."""
    power: dict[str, str] = {}
    posts: list[tuple[str, str]] = []

    def log_message(self, *args):
        pass

    def _host(self):
        return self.path.split('/')[3]

    def _reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._reply({'power': self.power[self._host()]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers['Content-Length'])))
        self.power[self._host()] = body['power']
        self.posts.append((self._host(), body['power']))
        self._reply({'power': body['power']})


def test_power_url_mode_reads_and_switches_through_the_simulator(tmp_path):
    _SimPower.power = {'sim-1': 'on'}
    _SimPower.posts = []
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _SimPower)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = (f'http://127.0.0.1:{server.server_address[1]}'
           '/sim/hosts/{host}/power')
    proc = BmcProcess(str(tmp_path), [
        {'host': 'sim-1', 'username': 'admin', 'password': 'pw'}],
        power_url=url)
    try:
        ipmi = ipmi_command.Command('127.0.0.1', b'admin', b'pw',
                                    port=proc.ports['sim-1'])
        assert ipmi.get_power()['powerstate'] == 'on'
        ipmi.set_power('off', wait=False)
        assert _SimPower.posts == [('sim-1', 'off')]
        assert ipmi.get_power()['powerstate'] == 'off'
        _SimPower.power['sim-1'] = 'on'     # the simulator powered it on
        assert ipmi.get_power()['powerstate'] == 'on'
    finally:
        assert proc.stop() == 0
        server.shutdown()
        server.server_close()


def test_sigterm_exits_cleanly_and_removes_the_ready_file(tmp_path):
    proc = BmcProcess(str(tmp_path), [
        {'host': 'n1', 'username': 'admin', 'password': 'pw'}])
    ready = os.path.join(str(tmp_path), 'bmc.ready')
    assert proc.ready['pid'] == proc.proc.pid
    assert os.path.exists(ready)
    assert proc.stop() == 0
    assert not os.path.exists(ready)


def test_slow_bmc_survives_a_fencer_that_gives_up_and_retries(bmcs):
    """A fencer abandons slow logins and opens new ones on the same UDP
    port; the late retransmits of the old sessions then reach pyghmi's
    server out of order. The BMC drops what it cannot handle and lives
    on (the BMC process crashed on them in chaos runs)."""
    fencer = IpmiFencer('node-e', {
        'address': '127.0.0.1', 'port': bmcs.ports['node-e'],
        'username': 'admin', 'password': 'pw-node-e'},
        FenceContext(FencingSettings(call_timeout=2.0)))
    assert fencer.power_state(time.monotonic() + 10) in (PowerState.ON,
                                                         PowerState.OFF)
    for delay in (0.3, 0.6, 1.0, 1.5, 0.3, 0.6, 1.0):
        bmcs.fault('node-e', 'slow', delay=delay)
        try:
            fencer.power_state(time.monotonic() + 10)
        except FenceFailed:
            pass                     # a slow BMC may well time out
        assert bmcs.state()['node-e']['fault']['delay'] == delay   # alive
    bmcs.fault('node-e', 'none')
    assert fencer.power_state(time.monotonic() + 10) in (PowerState.ON,
                                                         PowerState.OFF)
