"""Redfish fencing against the simulated Redfish BMCs over real HTTPS
(sushy-tools' emulator, a certificate generated for the test run)."""
from __future__ import annotations

import time

import pytest

from freezer_dr.demo.etcd_server import free_port
from freezer_dr.engine import fencing as fence_levels
from freezer_dr.exceptions import FenceFailed
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.ipmi import IpmiFencer
from freezer_dr.fencers.redfish import RedfishFencer
from freezer_dr.model import PowerState
from freezer_dr.simulator.certs import make_self_signed_cert
from tests.bmcproc import bmc_entry
from tests.bmcproc import module_bmcs
from tests.bmcproc import password

SETTINGS = FencingSettings(call_timeout=3.0, power_off_timeout=1.5,
                           poll_interval=0.05)
DEAD = FencingSettings(call_timeout=1.0, power_off_timeout=1.0,
                       poll_interval=0.05)
REDFISH = ['ok', 'soft', 'wrong-pw', 'bad-ca', 'stuck', 'read-only',
           'no-system', 'fallback-rf']
IPMI = ['fallback']


bmcs, clear_faults = module_bmcs(
    [bmc_entry(h, kind='redfish' if h in REDFISH else 'ipmi')
     for h in REDFISH + IPMI])


def url(bmcs, host: str) -> str:
    return f'https://127.0.0.1:{bmcs.ports[host]}'


def fencer(bmcs, host, settings=SETTINGS, name=None, **params):
    params = {'address': url(bmcs, host), 'username': 'admin',
              'password': password(host), 'ca_file': bmcs.ca_file, **params}
    return RedfishFencer(name or host, params,
                         FenceContext(settings=settings))


def test_fence_forces_power_off_and_reads_it_back(bmcs):
    result = fencer(bmcs, 'ok').fence(time.monotonic() + 8)
    assert result.success and result.level == 'redfish'
    assert result.power_state == 'off'
    assert [a['action'] for a in result.attempts] == ['status', 'off',
                                                       'status']
    assert result.attempts[1]['reset_type'] == 'ForceOff'
    assert url(bmcs, 'ok') in result.detail
    assert bmcs.commands('ok') == [('off', 'ok', 'off')]
    assert bmcs.state()['ok']['power'] == 'off'


def test_graceful_shutdown_comes_first_when_configured(bmcs):
    settings = FencingSettings(call_timeout=2.0, power_off_timeout=1.0,
                               soft_shutdown_timeout=1.0, poll_interval=0.05)
    result = fencer(bmcs, 'soft', settings).fence(time.monotonic() + 8)
    assert result.success
    assert result.attempts[1]['reset_type'] == 'GracefulShutdown'
    assert bmcs.commands('soft') == [('soft', 'ok', 'off')]


def test_wrong_password_is_named_as_such(bmcs):
    bmcs.fault('wrong-pw', 'wrong-password')
    with pytest.raises(FenceFailed) as failed:
        fencer(bmcs, 'wrong-pw').fence(time.monotonic() + 5)
    message = str(failed.value)
    assert message.startswith(f'wrong-pw: Redfish BMC {url(bmcs, "wrong-pw")}')
    assert 'authentication refused (HTTP 401)' in message
    assert password('wrong-pw') not in message
    assert bmcs.commands('wrong-pw') == []
    assert bmcs.state()['wrong-pw']['power'] == 'on'


def test_certificate_from_another_ca_fails_tls_verification(bmcs, tmp_path):
    other_ca, _key = make_self_signed_cert(str(tmp_path))
    for params in ({'ca_file': other_ca}, {'ca_file': None}):
        with pytest.raises(FenceFailed) as failed:
            fencer(bmcs, 'bad-ca', **params).fence(time.monotonic() + 5)
        assert 'bad-ca: Redfish BMC' in str(failed.value)
        assert 'TLS certificate verification failed' in str(failed.value)
    assert bmcs.state()['bad-ca']['power'] == 'on'
    # verify_tls: false is the operator's explicit choice
    assert fencer(bmcs, 'bad-ca', ca_file=None, verify_tls=False
                  ).power_state(time.monotonic() + 5) == PowerState.ON


def test_stuck_bmc_accepts_the_reset_and_fails_closed(bmcs):
    bmcs.fault('stuck', 'stuck')
    with pytest.raises(FenceFailed, match='power still on'):
        fencer(bmcs, 'stuck').fence(time.monotonic() + 5)
    assert ('off', 'ok', 'on') in bmcs.commands('stuck')
    assert bmcs.state()['stuck']['power'] == 'on'




def test_refused_connection_is_named():
    port = free_port()                     # a port nobody listens on
    refused = RedfishFencer('gone', {
        'address': f'https://127.0.0.1:{port}', 'username': 'admin',
        'password': 'x'}, FenceContext(settings=DEAD))
    with pytest.raises(FenceFailed, match='connection refused') as failed:
        refused.power_state(time.monotonic() + 3)
    assert f'gone: Redfish BMC https://127.0.0.1:{port}' in str(failed.value)


def test_unknown_system_id_is_named(bmcs):
    with pytest.raises(FenceFailed) as failed:
        fencer(bmcs, 'no-system', system_id='Nope-1').fence(
            time.monotonic() + 5)
    assert 'no-system: Redfish BMC' in str(failed.value)
    assert 'not found (HTTP 404)' in str(failed.value)
    assert 'Nope-1' in str(failed.value)
    assert bmcs.commands('no-system') == []


def test_power_state_read_sends_no_power_command(bmcs):
    assert fencer(bmcs, 'read-only').power_state(
        time.monotonic() + 5) == PowerState.ON
    bmcs.set_power('read-only', 'off')
    assert fencer(bmcs, 'read-only').power_state(
        time.monotonic() + 5) == PowerState.OFF
    lines = [e for e in bmcs.log() if e['host'] == 'read-only']
    assert lines and {e['command'] for e in lines} == {'status'}




def test_failed_redfish_level_falls_back_to_ipmi(bmcs):
    bmcs.fault('fallback-rf', 'wrong-password')
    redfish = fencer(bmcs, 'fallback-rf', name='fallback')
    ipmi = IpmiFencer('fallback', {
        'address': '127.0.0.1', 'port': bmcs.ports['fallback'],
        'username': 'admin', 'password': password('fallback')},
        FenceContext(settings=SETTINGS))
    result = fence_levels.fence_node('fallback', [redfish, ipmi],
                                     10)
    assert result.success and result.level == 'ipmi'
    assert result.attempts[0]['level'] == 'redfish'
    assert result.attempts[0]['result'] == 'failed'
    assert 'HTTP 401' in result.attempts[0]['error']
    assert result.attempts[1] == {**result.attempts[1], 'level': 'ipmi',
                                  'index': 2, 'result': 'off'}
    assert bmcs.commands('fallback') == [('off', 'ok', 'off')]
    assert bmcs.commands('fallback-rf') == []
