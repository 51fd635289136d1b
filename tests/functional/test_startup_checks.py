"""The engine's start-up checks: a bad inventory or budget is exit 2."""
from __future__ import annotations

import subprocess
import sys


def start(tmp_path, body: str, inventory: str | None = None):
    conf = tmp_path / 'freezer-dr.conf'
    text = ('[coordination]\nbackend_url = etcd3+http://127.0.0.1:9\n'
            + body)
    if inventory is not None:
        path = tmp_path / 'nodes.yaml'
        path.write_text(inventory)
        text += f'[fencing]\ninventory = {path}\n'
    conf.write_text(text)
    return subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.service', '--config-file',
         str(conf)], capture_output=True, text=True, timeout=20)


def test_inventory_with_an_unknown_key_names_file_host_and_field(tmp_path):
    result = start(tmp_path, '', inventory=(
        'nodes:\n  compute-1:\n    fencing:\n'
        '      - driver: ipmi\n        address: 127.0.0.1\n'
        '        username: admin\n        password: x\n'
        '        colour: blue\n'))
    assert result.returncode == 2
    assert 'nodes.yaml' in result.stderr
    assert "'compute-1'" in result.stderr and 'colour' in result.stderr
    assert 'password: x' not in result.stderr


def test_inventory_with_an_unreadable_password_file(tmp_path):
    result = start(tmp_path, '', inventory=(
        'nodes:\n  compute-2:\n    fencing:\n'
        '      - driver: ipmi\n        address: 127.0.0.1\n'
        '        username: admin\n'
        '        password_file: /nonexistent/secret\n'))
    assert result.returncode == 2
    assert "'compute-2'" in result.stderr
    assert 'password_file' in result.stderr


def test_explicit_inventory_that_does_not_exist(tmp_path):
    result = start(tmp_path, f'[fencing]\ninventory = {tmp_path}/none.yaml\n')
    assert result.returncode == 2
    assert 'none.yaml' in result.stderr


def test_unknown_plugin_is_named(tmp_path):
    result = start(tmp_path, '[notifiers]\ndrivers = log,carrier-pigeon\n')
    assert result.returncode == 2
    assert '[notifiers] drivers = carrier-pigeon' in result.stderr


def test_side_effect_timeout_longer_than_the_lease(tmp_path):
    result = start(tmp_path, '[cloud]\ncloud = prod\napi_timeout = 9.8\n')
    assert result.returncode == 2
    assert '[cloud] api_timeout (9.8 s)' in result.stderr
    assert 'lease_ttl (10 s)' in result.stderr
