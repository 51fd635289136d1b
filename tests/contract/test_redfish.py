"""Contract: the Redfish calls freezer-dr makes, against sushy-tools'
emulator with its upstream *fake* driver and against the simulator's
Redfish BMCs, over HTTPS with basic auth. A test that passes upstream and
fails on the simulator shows a simulator bug.

Upstream, the fake driver applies a power change 1 to 11 s after the
reset (as hardware would); the simulator applies it at once. So power is
waited for, never expected at once.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import typing as t

import bcrypt
import pytest
import requests
import sushy
from sushy import auth as sushy_auth
from sushy import exceptions as sushy_exc

from freezer_dr.demo.etcd_server import free_port
from freezer_dr.exceptions import FenceFailed
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.redfish import RedfishFencer
from freezer_dr.simulator.certs import make_self_signed_cert
from freezer_dr.simulator.child import stop_process
from tests.bmcproc import BmcProcess

USER, PASSWORD = 'admin', 'Redfish-pw-1'
SYSTEMS = ['node-off', 'node-soft', 'node-fence']
POWER_WAIT = 20.0          # the fake driver's worst case is 11 s


class Target:
    """One Redfish service: where it is and which system is which."""

    def __init__(self, name: str, url: str, ca_file: str,
                 systems: dict[str, str]) -> None:
        self.name, self.url, self.ca_file = name, url, ca_file
        self.systems = systems      # our name -> system path
        self.stop: t.Callable[[], None] = lambda: None

    def root(self, password: str = PASSWORD) -> sushy.Sushy:
        return sushy.Sushy(self.url, verify=self.ca_file,
                           auth=sushy_auth.BasicAuth(USER, password))

    def base_url(self, name: str) -> str:
        """The URL of the BMC that holds system ``name``."""
        return self.url if self.name == 'upstream' else self.urls[name]


def _upstream(workdir: str) -> Target:
    """``sushy-emulator --fake`` with one fake system per name."""
    cert, key = make_self_signed_cert(workdir)
    htpasswd = os.path.join(workdir, 'htpasswd')
    with open(htpasswd, 'w') as f:
        digest = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt())
        f.write(f'{USER}:{digest.decode()}\n')
    uuids = {name: f'7c0c5a0e-0000-4000-8000-00000000000{i}'
             for i, name in enumerate(SYSTEMS)}
    config = os.path.join(workdir, 'emulator.conf')
    with open(config, 'w') as f:
        f.write('\n'.join([
            'SUSHY_EMULATOR_FAKE_DRIVER = True',
            f'SUSHY_EMULATOR_AUTH_FILE = {htpasswd!r}',
            f'SUSHY_EMULATOR_STATE_DIR = {workdir!r}',
            "SUSHY_EMULATOR_FEATURE_SET = 'minimum'",
            'SUSHY_EMULATOR_FAKE_SYSTEMS = ' + repr([
                {'uuid': uuid, 'name': name, 'power_state': 'On',
                 'external_notifier': False, 'nics': []}
                for name, uuid in uuids.items()]), '']))
    port = free_port()
    with open(os.path.join(workdir, 'emulator.log'), 'wb') as log:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'sushy_tools.emulator.main',
             '--config', config, '--interface', '127.0.0.1',
             '--port', str(port), '--ssl-certificate', cert,
             '--ssl-key', key], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    url = f'https://127.0.0.1:{port}'
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(url + '/redfish/v1/', verify=cert, timeout=1)
            break
        except requests.RequestException:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError('sushy-emulator did not start; see '
                                   + log.name)
            time.sleep(0.1)
    target = Target('upstream', url, cert, {
        name: f'/redfish/v1/Systems/{uuid}' for name, uuid in uuids.items()})

    target.stop = lambda: stop_process(proc)
    return target


def _simulator(workdir: str) -> Target:
    """The simulator's BMC process: one Redfish BMC per name."""
    bmcs = BmcProcess(workdir, [
        {'host': name, 'username': USER, 'password': PASSWORD,
         'kind': 'redfish'} for name in SYSTEMS])
    urls = {name: f'https://127.0.0.1:{bmcs.ports[name]}'
            for name in SYSTEMS}
    target = Target('simulator', urls[SYSTEMS[0]], bmcs.ca_file, {})
    target.urls = urls
    for name in SYSTEMS:
        root = sushy.Sushy(urls[name], verify=bmcs.ca_file,
                           auth=sushy_auth.BasicAuth(USER, PASSWORD))
        target.systems[name] = root.get_system_collection(
        ).members_identities[0]
    target.stop = bmcs.stop
    return target


@pytest.fixture(scope='module', params=['upstream', 'simulator'])
def redfish(request, tmp_path_factory) -> t.Iterator[Target]:
    workdir = str(tmp_path_factory.mktemp(f'redfish-{request.param}'))
    target = (_upstream if request.param == 'upstream'
              else _simulator)(workdir)
    yield target
    target.stop()


def system(target: Target, name: str):
    root = sushy.Sushy(target.base_url(name), verify=target.ca_file,
                       auth=sushy_auth.BasicAuth(USER, PASSWORD))
    return root.get_system(target.systems[name])


def wait_power(target: Target, name: str, wanted) -> None:
    deadline = time.monotonic() + POWER_WAIT
    while True:
        found = system(target, name).power_state
        if found == wanted:
            return
        assert time.monotonic() < deadline, f'{name} still {found}'
        time.sleep(0.2)


def test_root_is_public_and_systems_need_credentials(redfish):
    root = redfish.root(password='not-it')      # GET /redfish/v1/: 200
    assert root.identity and root.redfish_version
    with pytest.raises(sushy_exc.AccessError) as refused:
        root.get_system_collection()
    assert refused.value.status_code == 401


def test_system_reads_power_and_offers_the_fencing_resets(redfish):
    found = system(redfish, 'node-fence')
    assert found.path == redfish.systems['node-fence']
    assert found.power_state == sushy.PowerState.ON
    assert found.uuid and found.identity
    allowed = found.get_allowed_reset_system_values()
    assert {sushy.ResetType.FORCE_OFF, sushy.ResetType.GRACEFUL_SHUTDOWN,
            sushy.ResetType.ON} <= allowed


def test_unknown_system_is_404(redfish):
    root = redfish.root()
    with pytest.raises(sushy_exc.ResourceNotFoundError):
        root.get_system('/redfish/v1/Systems/no-such-system')


def test_system_by_name_redirects_to_its_uuid(redfish):
    root = sushy.Sushy(redfish.base_url('node-fence'),
                       verify=redfish.ca_file,
                       auth=sushy_auth.BasicAuth(USER, PASSWORD))
    by_name = root.get_system('/redfish/v1/Systems/node-fence')
    assert by_name.uuid == system(redfish, 'node-fence').uuid


@pytest.mark.parametrize('name, reset', [
    ('node-off', sushy.ResetType.FORCE_OFF),
    ('node-soft', sushy.ResetType.GRACEFUL_SHUTDOWN)])
def test_reset_powers_the_system_off_then_on(redfish, name, reset):
    system(redfish, name).reset_system(reset)
    wait_power(redfish, name, sushy.PowerState.OFF)
    system(redfish, name).reset_system(sushy.ResetType.ON)
    wait_power(redfish, name, sushy.PowerState.ON)


def test_redfish_fencer_fences_and_verifies(redfish):
    settings = FencingSettings(call_timeout=5.0,
                               power_off_timeout=POWER_WAIT,
                               poll_interval=0.3)
    fencer = RedfishFencer('node-fence', {
        'address': redfish.base_url('node-fence'), 'username': USER,
        'password': PASSWORD, 'ca_file': redfish.ca_file,
        'system_id': redfish.systems['node-fence'].rsplit('/', 1)[-1]},
        FenceContext(settings=settings))
    result = fencer.fence(time.monotonic() + POWER_WAIT + 5)
    assert result.success and result.power_state == 'off'
    assert [a['action'] for a in result.attempts][:2] == ['status', 'off']


@pytest.mark.parametrize('redfish', ['upstream'], indirect=True)
def test_several_systems_need_a_system_id(redfish):
    # upstream only: a simulated BMC holds one system
    fencer = RedfishFencer('node-x', {
        'address': redfish.url, 'username': USER, 'password': PASSWORD,
        'ca_file': redfish.ca_file}, FenceContext())
    with pytest.raises(FenceFailed) as failed:
        fencer.power_state(time.monotonic() + 10)
    assert str(failed.value).startswith(f'node-x: Redfish BMC {redfish.url}')
    assert '3 systems' in str(failed.value)
    assert 'set system_id' in str(failed.value)
