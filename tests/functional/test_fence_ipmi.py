"""IPMI fencing and fencing levels against the real BMC process over UDP.

Each test uses its own BMC, so a fault injected for one test (and the
threads it leaves waiting on a dead BMC) cannot touch another.
"""
from __future__ import annotations

import threading
import time

import pytest

from freezer_dr.engine import fencing as fence_levels
from freezer_dr.exceptions import FenceFailed
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.context import WaitingGuard
from freezer_dr.fencers.ipmi import IpmiFencer
from freezer_dr.fencers.manual import ManualFencer
from freezer_dr.model import PowerState
from tests.bmcproc import bmc_entry
from tests.bmcproc import module_bmcs
from tests.bmcproc import password

# Healthy BMCs get 4 s per call (room for a loaded CI machine); BMCs
# meant to be dead get 1 s so tests stay short.
SETTINGS = FencingSettings(call_timeout=4.0, power_off_timeout=1.5,
                           poll_interval=0.05)
DEAD = FencingSettings(call_timeout=1.0, power_off_timeout=1.0,
                       poll_interval=0.05)
HOSTS = ['ok', 'already-off', 'wrong-pw', 'stuck', 'slow',
         'soft', 'lvl-dead', 'lvl-good', 'lvl-dead2', 'read-dead',
         'read-good', 'waits', 'beside']
OFF_AT_START = {'already-off'}


bmcs, clear_faults = module_bmcs(
    [bmc_entry(h, power='off' if h in OFF_AT_START else 'on')
     for h in HOSTS])


def fencer(bmcs, host, settings=SETTINGS, **params):
    params = {'address': '127.0.0.1', 'port': bmcs.ports[host],
              'username': 'admin', 'password': password(host), **params}
    return IpmiFencer(host, params, FenceContext(settings=settings))


def test_fence_turns_power_off_and_bmc_log_shows_the_off(bmcs):
    result = fencer(bmcs, 'ok').fence(time.monotonic() + 8)
    assert result.success and result.level == 'ipmi'
    assert result.power_state == 'off'
    assert [a['action'] for a in result.attempts] == ['status', 'off',
                                                       'status']
    assert bmcs.state()['ok']['power'] == 'off'
    assert bmcs.commands('ok') == [('off', 'ok', 'off')]


def test_already_off_node_fences_as_success_without_a_command(bmcs):
    result = fencer(bmcs, 'already-off').fence(time.monotonic() + 5)
    assert result.success and result.power_state == 'off'
    assert bmcs.commands('already-off') == []


def test_wrong_password_fails_at_once_naming_host_and_bmc(bmcs):
    bmcs.fault('wrong-pw', 'wrong-password')
    with pytest.raises(FenceFailed) as failed:
        fencer(bmcs, 'wrong-pw').fence(time.monotonic() + 5)
    message = str(failed.value)
    assert 'wrong-pw' in message
    assert f'127.0.0.1:{bmcs.ports["wrong-pw"]}' in message
    assert 'Incorrect password' in message       # not a timeout
    assert password('wrong-pw') not in message
    assert bmcs.state()['wrong-pw']['power'] == 'on'




def test_stuck_bmc_fails_at_the_power_off_timeout(bmcs):
    bmcs.fault('stuck', 'stuck')
    with pytest.raises(FenceFailed, match='power still on') as failed:
        fencer(bmcs, 'stuck').fence(time.monotonic() + 5)
    # the engine learns the host was read ON (no older evidence counts)
    assert failed.value.power == 'on' and failed.value.seen_at
    assert ('off', 'ok', 'on') in bmcs.commands('stuck')
    assert bmcs.state()['stuck']['power'] == 'on'


def test_slow_bmc_still_fences_within_the_deadline(bmcs):
    bmcs.fault('slow', 'slow', delay=0.1)
    settings = FencingSettings(call_timeout=3.0, power_off_timeout=3.0,
                               poll_interval=0.05)
    result = fencer(bmcs, 'slow', settings).fence(time.monotonic() + 10)
    assert result.success
    assert bmcs.commands('slow') == [('off', 'ok', 'off')]


def test_soft_shutdown_comes_first_when_configured(bmcs):
    settings = FencingSettings(call_timeout=1.0, power_off_timeout=1.0,
                               soft_shutdown_timeout=1.0, poll_interval=0.05)
    result = fencer(bmcs, 'soft', settings).fence(time.monotonic() + 5)
    assert result.success
    assert bmcs.commands('soft') == [('soft', 'ok', 'off')]


def test_next_level_fences_when_the_first_bmc_is_unreachable(bmcs):
    bmcs.fault('lvl-dead', 'unreachable')
    dead = fencer(bmcs, 'lvl-dead', DEAD)
    good = fencer(bmcs, 'lvl-good')
    result = fence_levels.fence_node('lvl-dead', [dead, good],
                                     8)
    assert result.success and result.power_state == 'off'
    assert result.attempts[0]['result'] == 'failed'
    assert result.attempts[1] == {**result.attempts[1], 'index': 2,
                                  'result': 'off'}
    assert bmcs.commands('lvl-good') == [('off', 'ok', 'off')]


def test_manual_level_succeeds_only_once_confirmed(bmcs):
    bmcs.fault('lvl-dead2', 'unreachable')
    confirmed: dict[str, float] = {}
    manual = ManualFencer('lvl-dead2', {}, FenceContext(
        manual_confirmation=confirmed.get))
    levels = [fencer(bmcs, 'lvl-dead2', DEAD), manual]

    held = fence_levels.fence_node('lvl-dead2', levels, 5)
    assert not held.success
    assert 'level 1 (ipmi)' in held.detail
    assert 'level 2 (manual): lvl-dead2: awaiting operator confirmation: ' \
           'run freezer-dr-manage host fenced lvl-dead2' in held.detail

    confirmed['lvl-dead2'] = time.time()
    done = fence_levels.fence_node('lvl-dead2', levels, 5)
    assert done.success and done.level == 'manual'
    assert done.power_state == 'off'




def test_a_guard_waiting_for_a_keepalive_stalls_no_other_ipmi_call(bmcs):
    """Every IPMI transmission happens inside pyghmi's session lock, and
    the gate is checked there. A guard that waits (the engine's waits up
    to a TTL for a late keepalive) held that lock and stalled every other
    IPMI call of the process; now it waits before the command, outside
    the lock, and the check inside uses its form that never waits."""
    release = threading.Event()
    waiting = threading.Event()
    calls = []

    def wait_for_keepalive() -> None:
        calls.append('wait')
        if len(calls) == 2:          # the check made for the command
            waiting.set()
            release.wait(20)

    guard = WaitingGuard(wait_for_keepalive, lambda: calls.append('now'))
    slow = FencingSettings(call_timeout=30.0, power_off_timeout=1.5,
                           poll_interval=0.05)
    fence = threading.Thread(target=lambda: fencer(
        bmcs, 'waits', slow).fence(time.monotonic() + 60, guard=guard))
    fence.start()
    try:
        assert waiting.wait(20)
        assert fencer(bmcs, 'beside').power_state(
            time.monotonic() + 8) == PowerState.ON
    finally:
        release.set()
        fence.join(30)
    assert not fence.is_alive()
    assert 'now' in calls            # every transmission was gated
    assert bmcs.state()['waits']['power'] == 'off'


def test_read_power_uses_the_first_level_that_answers(bmcs):
    bmcs.fault('read-dead', 'unreachable')
    state = fence_levels.read_power(
        [fencer(bmcs, 'read-dead', DEAD), fencer(bmcs, 'read-good')],
        time.monotonic() + 8)
    assert state == PowerState.ON
    assert fence_levels.read_power([], time.monotonic() + 1) == \
        PowerState.UNKNOWN
    # a power read is never a power command
    assert [e['command'] for e in bmcs.log()
            if e['host'] == 'read-good'] == ['status']




def test_a_send_never_leaves_the_io_thread_blocked_in_a_read():
    """pyghmi's sender sets a shared socket blocking while its IO thread
    sets it non-blocking and then reads it until empty: a send to a BMC
    that never answers, landing between the two, left the IO thread
    blocked in ``recvfrom`` and every IPMI call of the process waiting.
    The sender and reader installed here leave the flag alone. (With
    pyghmi's own pair the reader below blocks within a second.)"""
    import socket

    from pyghmi.ipmi.private import session as pyghmi_session

    from freezer_dr.fencers import ipmi_client
    ipmi_client.install_pyghmi_fixes()
    shared = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent_bmc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    shared.bind(('127.0.0.1', 0))
    silent_bmc.bind(('127.0.0.1', 0))
    stop = threading.Event()
    reads = []

    def send() -> None:
        while not stop.is_set():
            pyghmi_session._io_sendto(shared, b'hello',
                                      silent_bmc.getsockname())

    def read() -> None:
        while not stop.is_set():
            reads.append(pyghmi_session._io_recvfrom(shared, 3000))

    threads = [threading.Thread(target=f, daemon=True) for f in (send, read)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        shared.close()
        silent_bmc.close()
    assert not any(thread.is_alive() for thread in threads)
    assert reads and set(reads) == {None}     # nothing was ever sent to us


def test_concurrent_calls_with_retransmits_never_deadlock(bmcs):
    """pyghmi takes its two session-table locks in both orders (a send
    holds one and takes the other; a retransmit the other way round): two
    threads doing IPMI at once, one retransmitting, deadlocked every later
    call of the process. With the locks made one, every call ends."""
    from pyghmi.ipmi.private import session as pyghmi_session

    from freezer_dr.fencers import ipmi_client
    ipmi_client.install_pyghmi_fixes()
    assert pyghmi_session.WAITING_SESSIONS is \
        pyghmi_session.KEEPALIVE_SESSIONS
    bmcs.fault('slow', 'slow', delay=0.7)     # forces retransmits
    try:
        results: list = []

        def read(host):
            try:
                results.append(fencer(bmcs, host).power_state(
                    time.monotonic() + 6))
            except FenceFailed as exc:
                results.append(exc)

        threads = [threading.Thread(target=read, args=(host,))
                   for host in ('ok', 'slow', 'ok', 'slow') * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(thread.is_alive() for thread in threads)
        assert len(results) == len(threads)
    finally:
        bmcs.fault('slow', 'none')
    # and the process can still talk IPMI afterwards
    assert fencer(bmcs, 'ok').power_state(time.monotonic() + 6) in (
        PowerState.ON, PowerState.OFF)
