"""The shipped nodes.yaml.sample loads with the real inventory loader."""
from __future__ import annotations

import pathlib

from freezer_dr.fencers.inventory import load_inventory
from freezer_dr.fencers.ipmi import IpmiFencer
from freezer_dr.fencers.redfish import RedfishFencer

ROOT = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = ROOT / 'etc' / 'freezer-dr' / 'nodes.yaml.sample'


def test_the_sample_loads_and_shows_every_driver(tmp_path):
    # the sample's files under /etc/freezer-dr/ are made under tmp_path
    text = SAMPLE.read_text().replace('/etc/freezer-dr/', f'{tmp_path}/')
    (tmp_path / 'bmc').mkdir()
    for name in ('compute-1', 'compute-3'):
        (tmp_path / 'bmc' / name).write_text(f'secret-of-{name}\n')
    (tmp_path / 'bmc' / 'ca.pem').write_text('-----BEGIN CERTIFICATE-----\n')
    path = tmp_path / 'nodes.yaml'
    path.write_text(text)

    inventory = load_inventory(str(path))

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
