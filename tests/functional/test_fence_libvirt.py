"""libvirt fencing against libvirt's built-in test driver (no daemon)."""
from __future__ import annotations

import threading
import time

import pytest

from freezer_dr.engine.fencing import fence_node
from freezer_dr.exceptions import FenceFailed
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import FencingSettings

libvirt = pytest.importorskip('libvirt')

from freezer_dr.fencers.libvirt import LibvirtFencer  # noqa: E402

URI = 'test:///default'      # one 'test' domain, shared within the process
SETTINGS = FencingSettings(call_timeout=5.0, power_off_timeout=1.0,
                           poll_interval=0.05)


@pytest.fixture
def running_domain():
    """The test driver's 'test' domain, running; restored afterwards."""
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    conn = libvirt.open(URI)
    dom = conn.lookupByName('test')
    if not dom.isActive():
        dom.create()
    yield dom
    if not dom.isActive():
        dom.create()
    conn.close()


def fencer(domain='test', uri=URI):
    return LibvirtFencer('compute-9', {'uri': uri, 'domain': domain},
                         FenceContext(settings=SETTINGS))


def test_destroy_turns_the_domain_off(running_domain):
    result = fencer().fence(time.monotonic() + 5)
    assert result.success and result.level == 'libvirt'
    assert result.power_state == 'off'
    assert [a['action'] for a in result.attempts] == ['status', 'off',
                                                       'status']
    assert result.attempts[1]['result'] == 'destroyed'
    assert not running_domain.isActive()
    assert running_domain.state()[0] == libvirt.VIR_DOMAIN_SHUTOFF


def test_already_off_domain_fences_as_success(running_domain):
    running_domain.destroy()
    result = fencer().fence(time.monotonic() + 5)
    assert result.success and result.power_state == 'off'
    # read first: no destroy is sent to a domain that is already off
    assert [(a['action'], a['power']) for a in result.attempts] == [
        ('status', 'off')]


def test_power_state_reads_on_then_off(running_domain):
    assert fencer().power_state(time.monotonic() + 5).value == 'on'
    running_domain.destroy()
    assert fencer().power_state(time.monotonic() + 5).value == 'off'


def test_unknown_domain_fails_naming_host_and_domain(running_domain):
    with pytest.raises(FenceFailed) as failed:
        fencer(domain='no-such-domain').fence(time.monotonic() + 5)
    assert 'compute-9' in str(failed.value)
    assert 'no-such-domain' in str(failed.value)
    assert running_domain.isActive()


def test_unreachable_hypervisor_fails_and_next_level_is_tried(
        running_domain, tmp_path):
    dead = fencer(uri=f'qemu+unix:///system?socket={tmp_path}/none.sock')
    result = fence_node('compute-9', [dead, fencer()], 5)
    assert result.success and result.level == 'libvirt'
    assert result.attempts[0]['result'] == 'failed'
    assert 'compute-9' in result.attempts[0]['error']


def test_guard_stops_before_destroy(running_domain):
    from freezer_dr.exceptions import LeadershipLost

    def deposed():
        raise LeadershipLost('lease expired')

    with pytest.raises(LeadershipLost):
        fence_node('compute-9', [fencer()], 5,
                   guard=deposed)
    assert running_domain.isActive()


class _Lease:
    """A guard that passes ``passes`` times, then says the lease is lost;
    ``hold`` seconds of delay in the check after those (a worker thread
    held up right before its command)."""

    def __init__(self, passes: int, hold: float = 0.0) -> None:
        self.passes, self.hold, self.calls = passes, hold, 0

    def __call__(self) -> None:
        from freezer_dr.exceptions import LeadershipLost
        self.calls += 1
        if self.calls <= self.passes:
            return
        if self.hold:
            time.sleep(self.hold)
            return
        raise LeadershipLost('lease expired')


def test_lease_lost_after_the_callers_check_stops_the_destroy(
        running_domain):
    """Issue 7: the guard is checked again in the worker thread, right
    before destroy; a lease lost in between stops it."""
    from freezer_dr.exceptions import LeadershipLost
    lease = _Lease(passes=1)
    with pytest.raises(LeadershipLost):
        fencer().fence(time.monotonic() + 5, guard=lease)
    assert lease.calls == 2
    assert running_domain.isActive()


def test_abandoned_destroy_is_never_sent(running_domain):
    """Issue 7: a worker held up past its call's deadline before the
    destroy finds the call abandoned and does not send it."""
    short = FencingSettings(call_timeout=0.3, power_off_timeout=1.0,
                            poll_interval=0.05)
    lease = _Lease(passes=1, hold=0.8)
    dead = LibvirtFencer('compute-9', {'uri': URI, 'domain': 'test'},
                         FenceContext(settings=short))
    with pytest.raises(FenceFailed, match='no answer'):
        dead.fence(time.monotonic() + 5, guard=lease)
    time.sleep(1.0)               # the worker has resumed by now
    assert running_domain.isActive()


class _HangingClose:
    """libvirt with a connection whose close() hangs until released.

    libvirt's test driver never blocks, and no libvirtd runs here, so a
    hypervisor that stops answering on close is stood in for by this
    wrapper; open, lookup, state and destroy are the real test driver's.
    """

    def __init__(self, real, released: threading.Event) -> None:
        self._real, self._released = real, released

    def __getattr__(self, name):
        return getattr(self._real, name)

    def open(self, uri):
        return _Conn(self._real.open(uri), self._released)


class _Conn:
    def __init__(self, conn, released: threading.Event) -> None:
        self._conn, self._released = conn, released

    def lookupByName(self, name):
        return _Dom(self._conn.lookupByName(name), self)

    def close(self):
        self._released.wait(30)
        return self._conn.close()


class _Dom:
    def __init__(self, dom, conn: _Conn) -> None:
        self._dom, self._conn = dom, conn

    def __getattr__(self, name):
        return getattr(self._dom, name)

    def connect(self):
        return self._conn


def test_hanging_close_does_not_hold_the_fencer(running_domain):
    """Issue 7: closing the libvirt connection is bounded too."""
    released = threading.Event()
    hung = fencer()
    hung.libvirt = _HangingClose(hung.libvirt, released)
    timer = threading.Timer(8, released.set)   # never hang the suite
    timer.start()
    try:
        started = time.monotonic()
        assert hung.power_state(time.monotonic() + 1.0).value == 'on'
        result = hung.fence(time.monotonic() + 1.5)
        took = time.monotonic() - started
    finally:
        released.set()
        timer.cancel()
    assert result.success
    assert took < 3.0, f'close held the fencer {took:.1f} s'
