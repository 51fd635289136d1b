"""What every BMC fencer must do, for each kind (IPMI over UDP, Redfish
over HTTPS) against the real BMC process: fail by the hard deadline when
the BMC is gone, send nothing once the leader is deposed, and never let
the password out."""
from __future__ import annotations

import json
import logging
import time

import pytest

from freezer_dr.engine import fencing as fence_levels
from freezer_dr.exceptions import FenceFailed
from freezer_dr.exceptions import LeadershipLost
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.ipmi import IpmiFencer
from freezer_dr.fencers.redfish import RedfishFencer
from tests.bmcproc import bmc_entry
from tests.bmcproc import module_bmcs
from tests.bmcproc import password

SETTINGS = FencingSettings(call_timeout=4.0, power_off_timeout=1.5,
                           poll_interval=0.05)
KINDS = ('ipmi', 'redfish')
ROLES = ('unreachable', 'guarded', 'secret')


bmcs, clear_faults = module_bmcs(
    [bmc_entry(f'{kind}-{role}', kind=kind)
     for kind in KINDS for role in ROLES])


def fencer(bmcs, host: str, settings: FencingSettings = SETTINGS,
           **params):
    """The fencer of ``host``'s kind (its name's first word)."""
    context = FenceContext(settings=settings)
    login = {'username': 'admin', 'password': password(host)}
    if host.startswith('ipmi-'):
        return IpmiFencer(host, {'address': '127.0.0.1',
                                 'port': bmcs.ports[host], **login,
                                 **params}, context)
    return RedfishFencer(host, {
        'address': f'https://127.0.0.1:{bmcs.ports[host]}',
        'ca_file': bmcs.ca_file, **login, **params}, context)


@pytest.mark.parametrize('kind', KINDS)
def test_unreachable_bmc_fails_by_the_deadline(bmcs, kind):
    host = f'{kind}-unreachable'
    bmcs.fault(host, 'unreachable')
    slow_calls = FencingSettings(call_timeout=10.0, power_off_timeout=10.0,
                                 poll_interval=0.05)
    deadline = time.monotonic() + 2.0
    with pytest.raises(FenceFailed, match='no answer') as failed:
        fencer(bmcs, host, slow_calls).fence(deadline)
    # the hard deadline holds although a single call may take 10 s
    assert time.monotonic() < deadline + 1.0
    assert str(failed.value).startswith(f'{host}: ')


@pytest.mark.parametrize('kind', KINDS)
def test_guard_stops_fencing_before_any_power_command(bmcs, kind):
    host = f'{kind}-guarded'

    def deposed():
        raise LeadershipLost('lease expired')

    with pytest.raises(LeadershipLost):
        fence_levels.fence_node(host, [fencer(bmcs, host)], 5,
                                guard=deposed)
    assert bmcs.commands(host) == []
    assert bmcs.state()[host]['power'] == 'on'


@pytest.mark.parametrize('kind', KINDS)
def test_password_never_in_repr_errors_results_or_logs(bmcs, kind, caplog):
    host = f'{kind}-secret'
    caplog.set_level(logging.DEBUG)
    good = fencer(bmcs, host)
    result = good.fence(time.monotonic() + 5)
    bmcs.fault(host, 'wrong-password')
    wrong = fencer(bmcs, host, password='not-it')
    failure = fence_levels.fence_node(host, [fencer(bmcs, host), wrong], 8)
    seen = ' '.join([repr(good), str(good), repr(result), repr(failure),
                     caplog.text, json.dumps(bmcs.state())])
    assert result.success and not failure.success
    assert password(host) not in seen and 'not-it' not in seen
