"""The shipped systemd unit, and a real replica speaking the notify
protocol to a real NOTIFY_SOCKET (READY after joining, watchdog pings,
STOPPING on SIGTERM)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid

import pytest

from tests import replicas as rp

UNIT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'etc', 'systemd', 'freezer-dr.service')


def unit_settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    with open(UNIT) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith(('#', '[')):
                key, _, value = line.partition('=')
                found.setdefault(key, []).append(value)
    return found


def test_unit_is_a_hardened_notify_service_with_a_watchdog():
    unit = unit_settings()
    assert unit['Type'] == ['notify']
    assert unit['Restart'] == ['on-failure']
    assert int(unit['WatchdogSec'][0]) > 0
    assert unit['User'] == ['freezer-dr']
    for key in ('NoNewPrivileges', 'PrivateTmp', 'ProtectHome'):
        assert unit[key] == ['yes'], key
    assert unit['ProtectSystem'] == ['strict']
    assert unit['ReadWritePaths']
    assert unit['ExecStart'][0].split()[0] == '/usr/bin/freezer-dr'


def test_systemd_analyze_verify(tmp_path):
    analyze = shutil.which('systemd-analyze')
    if analyze is None:
        pytest.skip('systemd-analyze is not installed (apt-get install '
                    'systemd)')
    binary = shutil.which('freezer-dr') or os.path.join(
        os.path.dirname(sys.executable), 'freezer-dr')
    # the package is installed in every test environment: a missing
    # console script is a broken install, not a missing dependency
    assert os.access(binary, os.X_OK), \
        f'{binary}: the console script is not installed (pip install -e .)'
    with open(UNIT) as f:
        text = f.read().replace('/usr/bin/freezer-dr', binary)
    unit = tmp_path / 'freezer-dr.service'
    unit.write_text(text)
    result = subprocess.run([analyze, 'verify', str(unit)],
                            capture_output=True, text=True, timeout=60)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if 'freezer-dr.service' in line]
    assert result.returncode == 0 and not problems, result.stderr


def receive(sock: socket.socket, timeout: float) -> dict[str, str] | None:
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096).decode()
    except TimeoutError:
        return None
    return dict(line.split('=', 1) for line in data.splitlines())


def test_replica_notifies_ready_after_joining_and_pings_the_watchdog(
        etcd_url, tmp_path):
    name = f'@freezer-dr-test-{uuid.uuid4().hex}'
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind('\0' + name[1:])
    replicas = rp.ReplicaSet(str(tmp_path), [etcd_url], lease_ttl=3.0)
    replica = replicas[0]
    env = {'NOTIFY_SOCKET': name, 'WATCHDOG_USEC': '1000000'}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        replica.start()
        messages = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = receive(sock, 1.0)
            if message is not None:
                messages.append(message)
            if sum('WATCHDOG' in m for m in messages) >= 3 and any(
                    'READY' in m for m in messages):
                break
        ready = next(m for m in messages if 'READY' in m)
        assert ready['STATUS'] == f'replica-1 joined cluster ' \
                                  f'{replicas.cluster}'
        assert 'joined cluster' in replica.log_text()
        replica.terminate()
        assert replica.wait(20) == 0
        rest = []
        while (message := receive(sock, 0.5)) is not None:
            rest.append(message)
        assert any(m.get('STOPPING') == '1' for m in rest), rest
    finally:
        replicas.stop()
        sock.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
