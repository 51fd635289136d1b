"""The hard-deadline helpers of fencers: abandoned calls, the power
command gate, bounded clean-up, and pyghmi's wake-up fix."""
from __future__ import annotations

import threading
import time

import pytest
from pyghmi.ipmi.private import session as pyghmi_session

from freezer_dr.exceptions import FenceFailed
from freezer_dr.exceptions import LeadershipLost
from freezer_dr.fencers import ipmi_client
from freezer_dr.fencers.context import CallGate
from freezer_dr.fencers.context import WaitingGuard
from freezer_dr.fencers.context import call_with_deadline
from freezer_dr.fencers.context import finish_quietly
from freezer_dr.fencers.context import gated_call


def test_abandoning_a_call_cancels_its_gate():
    release = threading.Event()
    seen: list[str] = []

    def command(gate: CallGate) -> None:
        release.wait(5)
        try:
            gate.check()
        except FenceFailed as exc:
            seen.append(str(exc))
            return
        seen.append('sent')

    with pytest.raises(FenceFailed, match='bmc-x: power off: no answer'):
        gated_call(command, time.monotonic() + 0.1, 'bmc-x: power off')
    release.set()
    for _ in range(100):
        if seen:
            break
        time.sleep(0.01)
    assert seen == ['bmc-x: power off: power command not sent: the caller '
                    'abandoned the call']


def test_gate_raises_the_guards_own_error_first():
    def lost() -> None:
        raise LeadershipLost('lease expired')

    gate = CallGate(time.monotonic() + 10, lost, 'h: bmc: off')
    with pytest.raises(LeadershipLost):
        gate.check()


def test_gate_refuses_after_the_call_deadline():
    gate = CallGate(time.monotonic() - 0.001, what='h: bmc: off')
    with pytest.raises(FenceFailed, match='call deadline passed'):
        gate.check()
    CallGate(time.monotonic() + 10).check()      # in time: passes


def test_gate_without_waiting_uses_the_guards_form_that_never_waits():
    seen: list[str] = []
    guard = WaitingGuard(lambda: seen.append('wait'),
                         lambda: seen.append('now'))
    gate = CallGate(time.monotonic() + 10, guard, 'h: bmc: off')
    gate.check(wait=False)
    gate.check()
    assert seen == ['now', 'wait']
    plain = CallGate(time.monotonic() + 10, lambda: seen.append('plain'))
    plain.check(wait=False)            # a plain guard has one form
    assert seen[-1] == 'plain'


def test_a_result_that_comes_too_late_goes_to_the_orphan_handler():
    """A login that finishes after its caller gave up is closed (BMCs
    have few session slots); one in time is the caller's, not closed."""
    release = threading.Event()
    orphans: list[str] = []
    with pytest.raises(FenceFailed, match='no answer'):
        call_with_deadline(lambda: release.wait(5) and 'late session',
                           time.monotonic() + 0.05, 'h: bmc: login',
                           orphan=orphans.append)
    release.set()
    for _ in range(100):
        if orphans:
            break
        time.sleep(0.01)
    assert orphans == ['late session']
    assert call_with_deadline(lambda: 'session', time.monotonic() + 5,
                              'h: bmc: login',
                              orphan=orphans.append) == 'session'
    assert orphans == ['late session']


def test_errors_of_the_call_are_raised_unchanged():
    def fails() -> None:
        raise LeadershipLost('from the worker')

    with pytest.raises(LeadershipLost, match='from the worker'):
        call_with_deadline(fails, time.monotonic() + 5, 'x')


def test_clean_up_never_waits_past_its_deadline():
    hang = threading.Event()
    started = time.monotonic()
    finish_quietly(lambda: hang.wait(30), time.monotonic() - 1, 'close')
    finish_quietly(lambda: hang.wait(30), time.monotonic() + 0.1, 'close')
    finish_quietly(lambda: 1 / 0, time.monotonic() + 5, 'close')  # quiet
    hang.set()
    assert time.monotonic() - started < 5


def test_prompt_wakeup_does_not_sleep_on_an_already_queued_packet():
    """pyghmi's _io_wait registers its waiter after the packet may have
    been queued, then sleeps until its timeout; ours returns at once."""
    marker = object()
    pyghmi_session.sessionqueue.append(marker)
    waiter = threading.Thread(
        target=ipmi_client._prompt_io_wait, args=(30,), daemon=True)
    try:
        waiter.start()
        waiter.join(10)
        assert not waiter.is_alive()
    finally:
        pyghmi_session.sessionqueue.remove(marker)
        while pyghmi_session.ioqueue:       # our registration, unserved
            pyghmi_session.ioqueue.pop()
