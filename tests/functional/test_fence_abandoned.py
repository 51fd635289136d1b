"""Abandoned BMC calls are harmless: no power command leaves a worker
thread after its caller gave up or after the lease is gone (issue 7).

``call_with_deadline`` stops waiting at the deadline but cannot stop the
library call. The guard (the lease check) is re-checked in the worker
right before the command is sent, a cancelled flag is set when the caller
gives up, and the library's own retransmissions pass the same gate. The
guards here stand for the lease: they pass, then say it is lost.
"""
from __future__ import annotations

import threading
import time

import pytest

from freezer_dr.exceptions import FenceFailed
from freezer_dr.exceptions import LeadershipLost
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.ipmi import IpmiFencer
from freezer_dr.fencers.redfish import RedfishFencer
from tests.bmcproc import BmcProcess

IPMI = ['ipmi-lost', 'ipmi-resend']
REDFISH = ['rf-lost', 'rf-abandoned', 'rf-once']
SETTINGS = FencingSettings(call_timeout=3.0, power_off_timeout=1.0,
                           poll_interval=0.05)
#: the power command's call is abandoned after 0.5 s
SHORT = FencingSettings(call_timeout=0.5, power_off_timeout=1.0,
                        poll_interval=0.05)


@pytest.fixture(scope='module')
def bmcs(tmp_path_factory):
    proc = BmcProcess(str(tmp_path_factory.mktemp('bmc')), [
        {'host': h, 'username': 'admin', 'password': f'pw-{h}',
         'kind': 'redfish' if h in REDFISH else 'ipmi'}
        for h in IPMI + REDFISH])
    yield proc
    proc.stop()


def ipmi(bmcs, host, settings=SETTINGS):
    return IpmiFencer(host, {'address': '127.0.0.1', 'port': bmcs.ports[host],
                             'username': 'admin', 'password': f'pw-{host}'},
                      FenceContext(settings=settings))


def redfish(bmcs, host, settings=SETTINGS):
    return RedfishFencer(host, {
        'address': f'https://127.0.0.1:{bmcs.ports[host]}',
        'username': 'admin', 'password': f'pw-{host}',
        'ca_file': bmcs.ca_file}, FenceContext(settings=settings))


def power_commands(bmcs, host):
    return [e for e in bmcs.log()
            if e['host'] == host and e['command'] != 'status']


class Lease:
    """A guard: raises LeadershipLost once ``lost`` is set or after
    ``passes`` calls; ``on_first_call`` runs at the first check (the
    caller's, right before the power command)."""

    def __init__(self, passes: int | None = None,
                 on_first_call=None) -> None:
        self.passes = passes
        self.on_first_call = on_first_call
        self.calls = 0
        self.lost = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        if self.lost.is_set() or (self.passes is not None
                                  and self.calls > self.passes):
            raise LeadershipLost('lease lost')
        if self.calls == 1 and self.on_first_call:
            self.on_first_call()


@pytest.mark.parametrize('make, host', [(ipmi, 'ipmi-lost'),
                                        (redfish, 'rf-lost')])
def test_lease_lost_after_the_callers_check_stops_the_command(
        bmcs, make, host):
    """The caller's check passes; the worker's, right before the send,
    finds the lease gone: nothing is sent."""
    lease = Lease(passes=1)
    with pytest.raises(LeadershipLost):
        make(bmcs, host).fence(time.monotonic() + 5, guard=lease)
    assert lease.calls == 2
    assert power_commands(bmcs, host) == []
    assert bmcs.state()[host]['power'] == 'on'


def test_ipmi_retransmission_after_abandonment_is_never_sent(bmcs):
    """The off is lost on the wire; the caller gives up, the lease goes;
    pyghmi's retransmission must not reach the BMC once it answers."""
    host = 'ipmi-resend'
    lease = Lease(on_first_call=lambda: bmcs.fault(host, 'unreachable'))
    with pytest.raises(FenceFailed, match='no answer'):
        ipmi(bmcs, host, SHORT).fence(time.monotonic() + 5, guard=lease)
    lease.lost.set()
    bmcs.fault(host, 'none')
    time.sleep(4)                     # pyghmi retries for about 3 s
    assert power_commands(bmcs, host) == []
    assert bmcs.state()[host]['power'] == 'on'


def test_redfish_reset_is_not_sent_by_an_abandoned_worker(bmcs):
    """The worker is held up past the call deadline before its reset
    (here inside the guard): when it resumes, the gate refuses."""
    host = 'rf-abandoned'
    resumed = threading.Event()
    calls = []

    def slow_guard():
        calls.append(threading.current_thread().name)
        if len(calls) == 2:          # the worker's check, before the POST
            time.sleep(1.0)
            resumed.set()

    with pytest.raises(FenceFailed, match='reset ForceOff: no answer'):
        redfish(bmcs, host, SHORT).fence(time.monotonic() + 5,
                                         guard=slow_guard)
    assert resumed.wait(5)
    time.sleep(0.5)
    assert power_commands(bmcs, host) == []
    assert bmcs.state()[host]['power'] == 'on'


def test_redfish_reset_is_sent_once_when_the_bmc_is_slow(bmcs):
    """sushy resends a timed-out request (3 tries, 2 s apart) by default;
    the fencer allows one transmission per call."""
    host = 'rf-once'
    lease = Lease(on_first_call=lambda: bmcs.fault(host, 'slow',
                                                   delay=1.0))
    with pytest.raises(FenceFailed):
        redfish(bmcs, host, SHORT).fence(time.monotonic() + 3, guard=lease)
    lease.lost.set()
    time.sleep(6)
    bmcs.fault(host, 'none')
    offs = [e['command'] for e in power_commands(bmcs, host)]
    assert offs == ['off']            # the one sent while the lease held
