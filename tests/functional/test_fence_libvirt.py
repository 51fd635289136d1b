"""libvirt fencing against libvirt's built-in test driver (no daemon)."""
from __future__ import annotations

import time

import pytest

from freezer_dr.exceptions import FenceFailed
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.levels import fence_node

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
    result = fence_node('compute-9', [dead, fencer()], time.monotonic() + 5)
    assert result.success and result.level == 'libvirt'
    assert result.attempts[0]['result'] == 'failed'
    assert 'compute-9' in result.attempts[0]['error']


def test_guard_stops_before_destroy(running_domain):
    from freezer_dr.exceptions import LeadershipLost

    def deposed():
        raise LeadershipLost('lease expired')

    with pytest.raises(LeadershipLost):
        fence_node('compute-9', [fencer()], time.monotonic() + 5,
                   guard=deposed)
    assert running_domain.isActive()
