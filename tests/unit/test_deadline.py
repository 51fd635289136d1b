"""The overall deadline: time left, and sockets shut down when it is over
(a local socket pair; no network)."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from freezer_dr import deadline_http
from freezer_dr.deadline import Deadline
from freezer_dr.deadline import DeadlineExceeded


def test_bound_caps_a_timeout_by_the_time_left_and_raises_once_over():
    deadline = Deadline(0.3)
    assert deadline.bound(10.0, 'x') <= 0.3
    assert deadline.bound(0.1, 'x') == 0.1
    assert 0 < deadline.bound(None, 'x') <= 0.3
    deadline.check('still time')
    time.sleep(0.35)
    assert deadline.expired and deadline.remaining() == 0.0
    with pytest.raises(DeadlineExceeded,
                       match='send: timed out, past the deadline'):
        deadline.check('send')
    with pytest.raises(DeadlineExceeded):
        deadline.bound(5.0, 'read')


def test_a_blocked_read_returns_when_the_deadline_fires():
    ours, peer = socket.socketpair()
    got: list[bytes] = []
    with ours, peer, Deadline(2.0) as deadline:
        deadline.watch(ours)
        reader = threading.Thread(target=lambda: got.append(ours.recv(10)))
        started = time.monotonic()
        reader.start()
        peer.sendall(b'a')          # a dribble keeps a plain timeout alive
        reader.join(10)
        assert got == [b'a']
        got.clear()
        reader = threading.Thread(target=lambda: got.append(ours.recv(10)))
        reader.start()
        reader.join(10)
        took = time.monotonic() - started
    assert not reader.is_alive() and got == [b'']     # shut down: EOF
    assert 1.9 < took < 10


def test_a_closed_deadline_leaves_the_socket_alone():
    ours, peer = socket.socketpair()
    with ours, peer:
        with Deadline(0.1) as deadline:
            deadline.watch(ours)
        time.sleep(0.3)
        peer.sendall(b'still open')
        assert ours.recv(20) == b'still open'


def test_watching_after_the_deadline_shuts_the_socket_at_once():
    ours, peer = socket.socketpair()
    with ours, peer, Deadline(0.0) as deadline:
        deadline.fire()
        deadline.watch(ours)
        assert ours.recv(10) == b''


@pytest.mark.parametrize('method,url,write', [
    ('GET', 'http://nova/v2.1/servers', False),
    ('HEAD', 'http://nova/v2.1/', False),
    ('POST', 'http://nova/v2.1/servers/x/action', True),
    ('PUT', 'http://nova/v2.1/os-services/1', True),
    ('DELETE', 'http://nova/v2.1/servers/x', True),
    ('POST', 'http://keystone/v3/auth/tokens', False),
    ('POST', 'http://keystone/identity/v2.0/tokens/', False),
])
def test_writes_are_everything_but_reads_and_token_requests(method, url,
                                                            write):
    assert deadline_http.is_write(method, url) is write
