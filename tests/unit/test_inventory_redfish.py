"""The fencing inventory's redfish levels: fields, checks, file paths."""
from __future__ import annotations

import textwrap

import pytest

from freezer_dr.exceptions import ConfigError
from freezer_dr.fencers.inventory import load_inventory
from freezer_dr.fencers.redfish import RedfishFencer


def inventory(tmp_path, level: str) -> str:
    (tmp_path / 'bmc').mkdir(exist_ok=True)
    (tmp_path / 'bmc' / 'compute-3').write_text('Redfish-Secret-3\n')
    (tmp_path / 'bmc' / 'ca.pem').write_text('-----BEGIN CERTIFICATE-----\n')
    path = tmp_path / 'nodes.yaml'
    path.write_text(textwrap.dedent('''
        nodes:
          compute-3:
            fencing:
              - driver: redfish
                address: https://10.0.0.13
                username: admin
                password_file: bmc/compute-3
        ''') + textwrap.indent(textwrap.dedent(level), ' ' * 8))
    return str(path)


def test_redfish_level_with_every_field(tmp_path):
    path = inventory(tmp_path, '''
        system_id: System.Embedded.1
        verify_tls: true
        ca_file: bmc/ca.pem
        ''')
    [level] = load_inventory(path).levels('compute-3')
    assert isinstance(level, RedfishFencer)
    assert level.address == 'https://10.0.0.13'
    assert level.system_id == 'System.Embedded.1'
    assert level.ca_file == str(tmp_path / 'bmc' / 'ca.pem')
    assert level._verify == level.ca_file
    assert 'Redfish-Secret-3' not in repr(level)


def test_redfish_defaults_verify_tls_and_one_system(tmp_path):
    [level] = load_inventory(inventory(tmp_path, '')).levels('compute-3')
    assert level.system_id is None
    assert level._verify is True


@pytest.mark.parametrize('extra, field, problem', [
    ('verify_tls: "no"\n', None, 'verify_tls must be true or false'),
    ('ca_file: bmc/missing.pem\n', None, 'cannot read it'),
    ('ca_file: 42\n', 'ca_file', 'must be a file path'),
    ('port: 443\n', 'port', 'unknown key'),
])
def test_bad_redfish_fields_name_host_and_level(tmp_path, extra, field,
                                                problem):
    with pytest.raises(ConfigError) as failed:
        load_inventory(inventory(tmp_path, extra))
    message = str(failed.value)
    assert "host 'compute-3': fencing[0]" in message
    if field:
        assert f"field '{field}'" in message
    assert problem in message


def test_address_must_be_a_url(tmp_path):
    path = inventory(tmp_path, '')
    text = open(path).read().replace('https://10.0.0.13', '10.0.0.13')
    open(path, 'w').write(text)
    with pytest.raises(ConfigError, match='must be a URL'):
        load_inventory(path)
