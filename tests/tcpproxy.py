"""A loopback TCP proxy that can forward, refuse or black-hole traffic.

Put it between a client and a real server to cut the network in tests:
``close`` resets every connection (like a refused port), ``blackhole``
keeps connections open but drops every byte (like a silent partition),
``forward`` heals. ``latency`` delays every chunk relayed in either
direction (a slow network or a slow server).
"""
from __future__ import annotations

import selectors
import socket
import struct
import threading
import time

FORWARD = 'forward'
CLOSE = 'close'
BLACKHOLE = 'blackhole'
MODES = (FORWARD, CLOSE, BLACKHOLE)


class TCPProxy:
    """Listens on 127.0.0.1:<free port> and relays to ``target``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.mode = FORWARD
        self.latency = 0.0
        self._listener = socket.create_server(('127.0.0.1', 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._closed = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """tooz URL through this proxy (when it fronts etcd)."""
        return f'etcd3+http://127.0.0.1:{self.port}'

    def start(self) -> TCPProxy:
        self._spawn(self._accept_loop, 'tcpproxy-accept')
        return self

    def stop(self) -> None:
        """Close the listener and every connection; join the threads."""
        self._closed.set()
        _shutdown(self._listener)   # wakes accept(); close alone does not
        self._listener.close()
        self._drop_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> TCPProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def set_mode(self, mode: str) -> None:
        """Switch mode; connections that saw a cut are closed."""
        if mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}')
        with self._lock:
            previous, self.mode = self.mode, mode
        if mode == CLOSE or previous == BLACKHOLE:
            self._drop_all()

    def forward(self) -> None:
        self.set_mode(FORWARD)

    def close(self) -> None:
        self.set_mode(CLOSE)

    def blackhole(self) -> None:
        self.set_mode(BLACKHOLE)

    def set_latency(self, seconds: float) -> None:
        """Delay each relayed chunk by ``seconds`` (0: no delay)."""
        if seconds < 0:
            raise ValueError('latency must not be negative')
        self.latency = seconds

    # -- internals ------------------------------------------------------
    def _spawn(self, target, name: str, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name,
                                  daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _addr = self._listener.accept()
            except OSError:
                return
            if self.mode == CLOSE:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            self._spawn(self._relay, 'tcpproxy-relay', client, upstream)

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as sel:
            sel.register(client, selectors.EVENT_READ)
            sel.register(upstream, selectors.EVENT_READ)
            try:
                while not self._closed.is_set():
                    for key, _ in sel.select(timeout=0.2):
                        data = key.fileobj.recv(65536)
                        if not data:
                            return
                        if self.latency:
                            time.sleep(self.latency)
                        if self.mode == FORWARD:
                            peer[key.fileobj].sendall(data)
            except (OSError, ValueError):
                return
            finally:
                self._forget(client, upstream)

    def _forget(self, client: socket.socket, upstream: socket.socket) -> None:
        with self._lock:
            if (client, upstream) in self._pairs:
                self._pairs.remove((client, upstream))
        _reset(client)
        upstream.close()

    def _drop_all(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for client, upstream in pairs:
            # Wake the relay thread, which closes both sockets itself.
            _shutdown(client)
            _shutdown(upstream)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _reset(sock: socket.socket) -> None:
    """Close with RST so the peer sees the cut at once."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                        struct.pack('ii', 1, 0))
        sock.close()
    except OSError:
        pass
