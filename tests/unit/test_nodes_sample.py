"""The shipped nodes.yaml.sample loads with the real inventory loader."""
from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

from freezer_dr.exceptions import ConfigError
from freezer_dr.fencers.inventory import load_inventory
from freezer_dr.fencers.ipmi import IpmiFencer
from freezer_dr.fencers.redfish import RedfishFencer

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / 'etc' / 'freezer-dr' / 'nodes.yaml.sample'
#: the sample's libvirt level needs the libvirt extra (tox -e libvirt runs
#: this module with it; without it, the load must say what is missing)
HAVE_LIBVIRT = importlib.util.find_spec('libvirt') is not None


def write_sample(tmp_path) -> pathlib.Path:
    # the sample's files under /etc/freezer-dr/ are made under tmp_path
    text = SAMPLE.read_text().replace('/etc/freezer-dr/', f'{tmp_path}/')
    (tmp_path / 'bmc').mkdir()
    for name in ('compute-1', 'compute-3'):
        (tmp_path / 'bmc' / name).write_text(f'secret-of-{name}\n')
    (tmp_path / 'bmc' / 'ca.pem').write_text('-----BEGIN CERTIFICATE-----\n')
    path = tmp_path / 'nodes.yaml'
    path.write_text(text)
    return path


def test_without_libvirt_the_sample_names_the_missing_extra(tmp_path,
                                                            monkeypatch):
    monkeypatch.setitem(sys.modules, 'libvirt', None)   # import fails
    with pytest.raises(ConfigError) as err:
        load_inventory(str(write_sample(tmp_path)))
    assert "host 'compute-2'" in str(err.value)
    assert 'pip install "freezer-dr[libvirt]"' in str(err.value)


@pytest.mark.skipif(not HAVE_LIBVIRT,
                    reason='libvirt-python is not installed (tox -e libvirt)')
def test_the_sample_loads_and_shows_every_driver(tmp_path):
    inventory = load_inventory(str(write_sample(tmp_path)))

    assert inventory.hosts() == ['compute-1', 'compute-2', 'compute-3']
    drivers = {type(level).__name__ for host in inventory.hosts()
               for level in inventory.levels(host)}
    assert drivers == {'IpmiFencer', 'ManualFencer', 'LibvirtFencer',
                       'RedfishFencer'}
    redfish, ipmi = inventory.levels('compute-3')
    assert isinstance(redfish, RedfishFencer)
    assert isinstance(ipmi, IpmiFencer)
    assert redfish.address == 'https://10.0.0.13'
    assert redfish.system_id == 'System.Embedded.1'
    assert redfish.ca_file == str(tmp_path / 'bmc' / 'ca.pem')
    assert 'secret-of-compute-3' not in repr(redfish)


def test_the_redfish_example_names_every_redfish_field():
    text = SAMPLE.read_text()
    start = text.index('driver: redfish')
    block = text[start:text.index('- driver:', start)]
    for field in ('address:', 'username:', 'password_file:', 'system_id:',
                  'verify_tls:', 'ca_file:'):
        assert field in block, field
