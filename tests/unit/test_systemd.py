"""The systemd notify protocol against real AF_UNIX datagram sockets."""
from __future__ import annotations

import os
import socket
import uuid

import pytest

from freezer_dr import systemd


def receive(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split('=', 1) for line in data.splitlines())


@pytest.fixture(params=['path', 'abstract'])
def notify_socket(request, tmp_path):
    """(NOTIFY_SOCKET value, bound receiving socket), as systemd makes it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(2)
    if request.param == 'path':
        name = str(tmp_path / 'notify')
        sock.bind(name)
    else:
        name = f'@freezer-dr-test-{uuid.uuid4().hex}'
        sock.bind('\0' + name[1:])
    with sock:
        yield name, sock


def test_ready_status_stopping_and_watchdog(notify_socket):
    name, sock = notify_socket
    notifier = systemd.Notifier({'NOTIFY_SOCKET': name})
    assert notifier.enabled
    assert notifier.ready('r1 joined\ncluster x')
    assert receive(sock) == {'READY': '1', 'STATUS': 'r1 joined cluster x'}
    assert notifier.status('leader')
    assert receive(sock) == {'STATUS': 'leader'}
    assert notifier.watchdog()
    assert receive(sock) == {'WATCHDOG': '1'}
    assert notifier.stopping()
    assert receive(sock) == {'STOPPING': '1', 'STATUS': 'stopping'}


def test_abstract_names_start_with_a_nul_byte():
    assert systemd.socket_address('@x/y') == '\0x/y'
    assert systemd.socket_address('/run/systemd/notify') == \
        '/run/systemd/notify'


def test_not_under_systemd_nothing_is_sent():
    notifier = systemd.Notifier({})
    assert not notifier.enabled
    assert not notifier.ready('x')
    assert notifier.watchdog_interval is None


def test_a_vanished_socket_is_not_an_error(tmp_path):
    notifier = systemd.Notifier({'NOTIFY_SOCKET': str(tmp_path / 'gone')})
    assert notifier.notify(status='x') is False


@pytest.mark.parametrize('env, expected', [
    ({'WATCHDOG_USEC': '30000000'}, 30.0),
    ({'WATCHDOG_USEC': '500000', 'WATCHDOG_PID': str(os.getpid())}, 0.5),
    ({'WATCHDOG_USEC': '500000', 'WATCHDOG_PID': '1'}, None),  # not ours
    ({'WATCHDOG_USEC': '0'}, None),
    ({'WATCHDOG_USEC': 'x'}, None),
    ({}, None),
])
def test_watchdog_interval(env, expected):
    assert systemd.Notifier(env).watchdog_interval == expected


def test_watchdog_pings_only_while_healthy(notify_socket):
    name, sock = notify_socket
    healthy = [True, 'standby']
    watchdog = systemd.Watchdog(
        systemd.Notifier({'NOTIFY_SOCKET': name, 'WATCHDOG_USEC': '200000'}),
        lambda: (healthy[0], healthy[1]))
    watchdog.start()
    try:
        assert receive(sock) == {'WATCHDOG': '1'}
        assert receive(sock) == {'WATCHDOG': '1'}
        healthy[:] = [False, 'campaign thread stalled']
        sock.settimeout(0.3)
        while True:             # drain a ping sent before the change
            try:
                sock.recv(4096)
            except TimeoutError:
                break
        with pytest.raises(TimeoutError):
            sock.recv(4096)     # several periods: no ping at all
        healthy[:] = [True, 'standby']
        sock.settimeout(2)
        assert receive(sock) == {'WATCHDOG': '1'}
    finally:
        watchdog.stop()
