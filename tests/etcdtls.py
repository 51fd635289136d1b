"""A real etcd cluster over TLS with client certificates, for tests.

Members may listen on loopback ports (functional tests) or on the
addresses of network namespaces, started through a command prefix such
as ``ip netns exec ctl1`` (the controllers tier). Processes are
controlled by PID only.
"""
from __future__ import annotations

import os
import signal
import subprocess
import time
import typing as t
import urllib.parse

import requests

from freezer_dr.demo.etcd_server import EtcdStartError
from freezer_dr.demo.etcd_server import find_etcd_binary
from freezer_dr.demo.etcd_server import free_port_pairs
from freezer_dr.simulator.child import log_tail
from freezer_dr.simulator.child import stop_process
from tests.tlscerts import CertificateAuthority
from tests.tlscerts import Issued


class TLSMember:
    """One etcd member with TLS on its client and peer URLs."""

    def __init__(self, name: str, ip: str, client_port: int,
                 peer_port: int, base_dir: str, tls: Issued, ca: str,
                 wrap: t.Sequence[str] = ()) -> None:
        self.name = name
        self.ip = ip
        self.client_port = client_port
        self.peer_port = peer_port
        self.data_dir = os.path.join(base_dir, f'{name}.etcd')
        self.log_path = os.path.join(base_dir, f'{name}.log')
        self.tls = tls
        self.ca = ca
        self.wrap = list(wrap)
        self.initial_cluster = ''
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f'{self.ip}:{self.client_port}'

    @property
    def client_url(self) -> str:
        return f'https://{self.endpoint}'

    @property
    def peer_url(self) -> str:
        return f'https://{self.ip}:{self.peer_port}'

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        return [*self.wrap, find_etcd_binary(),
                '--name', self.name, '--data-dir', self.data_dir,
                '--listen-client-urls', self.client_url,
                '--advertise-client-urls', self.client_url,
                '--listen-peer-urls', self.peer_url,
                '--initial-advertise-peer-urls', self.peer_url,
                '--initial-cluster', self.initial_cluster,
                '--initial-cluster-state', 'new',
                '--cert-file', self.tls.cert, '--key-file', self.tls.key,
                '--trusted-ca-file', self.ca, '--client-cert-auth',
                '--peer-cert-file', self.tls.cert,
                '--peer-key-file', self.tls.key,
                '--peer-trusted-ca-file', self.ca,
                '--peer-client-cert-auth',
                # a partitioned member notices quickly, as in production
                '--heartbeat-interval', '100', '--election-timeout', '1000']

    def start(self) -> TLSMember:
        if self.running:
            return self
        with open(self.log_path, 'ab') as log:
            self.proc = subprocess.Popen(
                self.command(), stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def _signal(self, sig: int) -> None:
        if self.running:
            assert self.proc is not None
            os.kill(self.proc.pid, sig)

    def kill(self) -> None:
        """kill -9 (a crash)."""
        self._signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self) -> None:
        stop_process(self.proc, timeout=5)

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)


class TLSEtcdCluster:
    """Three (or N) TLS members, and a client certificate for freezer-dr."""

    def __init__(self, base_dir: str, ips: t.Sequence[str] | None = None,
                 size: int = 3, ports: t.Sequence[tuple[int, int]] = (),
                 wraps: t.Sequence[t.Sequence[str]] = ()) -> None:
        self.base_dir = base_dir
        ips = list(ips or ['127.0.0.1'] * size)
        ports = list(ports) or free_port_pairs(len(ips))
        self.ca = CertificateAuthority(os.path.join(base_dir, 'pki'))
        self.client = self.ca.issue('freezer-dr', dns=['freezer-dr'])
        self.members = []
        for i, ip in enumerate(ips):
            tls = self.ca.issue(f'm{i}', ips=[ip, '127.0.0.1'],
                                dns=['localhost'])
            wrap = wraps[i] if i < len(wraps) else ()
            self.members.append(TLSMember(
                f'm{i}', ip, ports[i][0], ports[i][1], base_dir, tls,
                self.ca.cert, wrap))
        initial = ','.join(f'{m.name}={m.peer_url}' for m in self.members)
        for member in self.members:
            member.initial_cluster = initial

    def backend_url(self, order: t.Sequence[int] | None = None,
                    **extra: str) -> str:
        """The tooz URL listing the members (in ``order``) with TLS files."""
        order = range(len(self.members)) if order is None else order
        hosts = ','.join(self.members[i].endpoint for i in order)
        query = urllib.parse.urlencode({
            'ca_cert': self.ca.cert, 'cert_key': self.client.key,
            'cert_cert': self.client.cert, **extra}, safe='/')
        return f'etcd3+https://{hosts}?{query}'

    def session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca.cert
        session.cert = (self.client.cert, self.client.key)
        return session

    def start(self, timeout: float = 30) -> TLSEtcdCluster:
        for member in self.members:
            member.start()
        try:
            for member in self.members:
                self.wait_healthy(member, timeout)
        except EtcdStartError:
            self.stop()
            raise
        return self

    def wait_healthy(self, member: TLSMember, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self.session() as session:
            while time.monotonic() < deadline:
                if not member.running:
                    raise EtcdStartError(f'etcd {member.name} exited:\n'
                                         f'{member.log_tail()}')
                try:
                    resp = session.get(member.client_url + '/health',
                                       timeout=1)
                    if resp.ok and resp.json().get('health') == 'true':
                        return
                except (requests.RequestException, ValueError):
                    pass
                time.sleep(0.1)
        raise EtcdStartError(f'etcd {member.name} not healthy after '
                             f'{timeout} s:\n{member.log_tail()}')

    def status(self, member: TLSMember) -> dict[str, t.Any] | None:
        """The member's maintenance/status, None if it does not answer."""
        try:
            with self.session() as session:
                return session.post(member.client_url +
                                    '/v3/maintenance/status', json={},
                                    timeout=1).json()
        except (requests.RequestException, ValueError):
            return None

    def leader(self) -> TLSMember:
        for member in self.members:
            status = self.status(member) if member.running else None
            if status and status.get('leader') == status.get(
                    'header', {}).get('member_id'):
                return member
        raise EtcdStartError('no etcd member is leader')

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def close(self) -> None:
        """Stop every member (the files stay for post-mortems)."""
        self.stop()

    def __enter__(self) -> TLSEtcdCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
