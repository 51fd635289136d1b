"""The fencing inventory: format checks, secrets, building the levels."""
from __future__ import annotations

import logging
import textwrap

import pytest

from freezer_dr.exceptions import ConfigError
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.inventory import load_inventory
from freezer_dr.fencers.ipmi import IpmiFencer
from freezer_dr.fencers.manual import ManualFencer

GOOD = """
nodes:
  compute-1:
    fencing:
      - driver: ipmi
        address: 10.0.0.11
        port: 6230
        username: admin
        password_file: bmc/compute-1
      - driver: manual
  compute-2:
    fencing:
      - driver: ipmi
        address: 10.0.0.12
        username: admin
        password: Inline-Secret-2
"""


def write(tmp_path, text, name='nodes.yaml'):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


@pytest.fixture
def good(tmp_path):
    (tmp_path / 'bmc').mkdir()
    (tmp_path / 'bmc' / 'compute-1').write_text('File-Secret-1\n')
    return write(tmp_path, GOOD)


def test_levels_are_built_in_order_with_settings(good):
    settings = FencingSettings(call_timeout=2.0)
    inventory = load_inventory(good, settings=settings)
    assert inventory.hosts() == ['compute-1', 'compute-2']
    assert 'compute-1' in inventory and 'compute-3' not in inventory
    first, second = inventory.levels('compute-1')
    assert isinstance(first, IpmiFencer) and isinstance(second, ManualFencer)
    assert first.bmc == '10.0.0.11:6230' and first.settings == settings
    assert inventory.levels('compute-2')[0].port == 623
    with pytest.raises(KeyError):
        inventory.levels('compute-3')


def test_password_file_is_read_relative_to_the_inventory(good):
    fencer = load_inventory(good).levels('compute-1')[0]
    assert fencer._password.reveal() == 'File-Secret-1'


def test_passwords_never_in_repr_or_logs(good, caplog):
    caplog.set_level(logging.DEBUG)
    inventory = load_inventory(good)
    shown = repr(inventory) + ''.join(
        repr(f) + str(f) + repr(vars(f))
        for h in inventory.hosts() for f in inventory.levels(h))
    shown += caplog.text
    assert 'File-Secret-1' not in shown and 'Inline-Secret-2' not in shown


def test_manual_level_uses_the_injected_confirmation(good):
    confirmed = {'compute-1': 1234.5}
    manual = load_inventory(good, manual_confirmation=confirmed.get) \
        .levels('compute-1')[1]
    result = manual.fence(deadline=0)
    assert result.success and result.level == 'manual'
    assert result.attempts[0]['t'] == 1234.5


@pytest.mark.parametrize('text, host, field', [
    ('nodes:\n  c1:\n    fencing: []\n', 'c1', 'fencing'),
    ('nodes:\n  c1: {}\n', 'c1', 'fencing'),
    ('nodes:\n  c1:\n    fencing: [{driver: manual}]\n    colour: red\n',
     'c1', 'colour'),
    ('nodes:\n  c1:\n    fencing: [{driver: telepathy}]\n', 'c1', 'driver'),
    ('nodes:\n  c1:\n    fencing: [{address: 1.2.3.4}]\n', 'c1', 'driver'),
    ('nodes:\n  c1:\n    fencing:\n      - {driver: ipmi, address: a, '
     'username: u}\n', 'c1', 'password'),
    ('nodes:\n  c1:\n    fencing:\n      - {driver: ipmi, address: a, '
     'username: u, password: p, community: x}\n', 'c1', 'community'),
    ('nodes:\n  c1:\n    fencing:\n      - {driver: ipmi, address: a, '
     'username: u, password_file: /nonexistent/pw}\n', 'c1',
     'password_file'),
    ('nodes:\n  c1:\n    fencing:\n      - {driver: ipmi, address: a, '
     'username: u, password: p, password_file: f}\n', 'c1', 'password_file'),
    ('nodes:\n  c1:\n    fencing:\n      - {driver: libvirt, '
     'uri: "test:///default"}\n', 'c1', 'domain'),
    ('hosts: {}\n', None, 'hosts'),
    ('nodes: {}\n', None, 'nodes'),
])
def test_errors_name_file_host_and_field(tmp_path, text, host, field):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_inventory(path)
    message = str(error.value)
    assert message.startswith(path)
    assert f"field '{field}'" in message
    if host:
        assert f"host '{host}'" in message


def test_bad_port_names_the_level(tmp_path):
    path = write(tmp_path, 'nodes:\n  c1:\n    fencing:\n      - {driver: '
                           'ipmi, address: a, username: u, password: p, '
                           'port: twelve}\n')
    with pytest.raises(ConfigError, match=r"host 'c1': fencing\[0\]"):
        load_inventory(path)


def test_unreadable_or_invalid_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match='cannot read'):
        load_inventory(str(tmp_path / 'missing.yaml'))
    path = write(tmp_path, 'nodes:\n  c1: [password: Leaky-Secret\n')
    with pytest.raises(ConfigError, match='invalid YAML') as error:
        load_inventory(path)
    assert 'Leaky-Secret' not in str(error.value)
