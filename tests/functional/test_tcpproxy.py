"""The test TCP proxy: forwards, cuts, black-holes and delays traffic."""
from __future__ import annotations

import socket
import threading
import time

import pytest

from tests.tcpproxy import TCPProxy


@pytest.fixture
def echo_server():
    """A loopback echo server; yields its port."""
    listener = socket.create_server(('127.0.0.1', 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=echo, args=(conn,), daemon=True).start()

    def echo(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1024):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()


def round_trip(port: int, timeout: float = 5) -> float:
    with socket.create_connection(('127.0.0.1', port), timeout) as sock:
        started = time.monotonic()
        sock.sendall(b'ping')
        assert sock.recv(1024) == b'ping'
        return time.monotonic() - started


def test_latency_delays_each_direction_then_heals(echo_server):
    with TCPProxy('127.0.0.1', echo_server) as proxy:
        assert round_trip(proxy.port) < 0.2
        proxy.set_latency(0.3)
        assert round_trip(proxy.port) >= 0.6       # request and reply
        proxy.set_latency(0)
        assert round_trip(proxy.port) < 0.2
        with pytest.raises(ValueError):
            proxy.set_latency(-1)


def test_blackhole_drops_bytes_and_close_refuses(echo_server):
    with TCPProxy('127.0.0.1', echo_server) as proxy:
        proxy.blackhole()
        with pytest.raises(TimeoutError):
            round_trip(proxy.port, timeout=0.5)
        proxy.close()
        with pytest.raises(OSError):
            round_trip(proxy.port, timeout=0.5)
        proxy.forward()
        assert round_trip(proxy.port) < 0.2
