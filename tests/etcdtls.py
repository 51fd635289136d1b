"""A real etcd cluster over TLS with client certificates, for tests:
:class:`freezer_dr.demo.etcd_server.EtcdCluster` with a test CA.

Members may listen on loopback ports (functional tests) or on the
addresses of network namespaces, started through a command prefix such
as ``ip netns exec ctl1`` (the controllers tier). Processes are
controlled by PID only.
"""
from __future__ import annotations

import os
import typing as t
import urllib.parse

import requests

from freezer_dr.demo.etcd_server import EtcdCluster
from freezer_dr.demo.etcd_server import EtcdServer
from freezer_dr.demo.etcd_server import EtcdTLS
from freezer_dr.demo.etcd_server import free_port_pairs
from tests.tlscerts import CertificateAuthority
from tests.tlscerts import Issued


def tls_member(name: str, ip: str, ports: tuple[int, int], base_dir: str,
               tls: Issued, ca: str, initial_cluster: str,
               wrap: t.Sequence[str] = ()) -> EtcdServer:
    """One etcd member with TLS on its client and peer URLs."""
    client_port, peer_port = ports
    return EtcdServer(
        base_dir, name=name, client_port=client_port, peer_port=peer_port,
        initial_cluster=initial_cluster, ip=ip, wrap=wrap,
        tls=EtcdTLS(cert=tls.cert, key=tls.key, ca=ca),
        # a partitioned member notices quickly, as in production
        extra_args=['--heartbeat-interval', '100',
                    '--election-timeout', '1000'])


class TLSEtcdCluster(EtcdCluster):
    """Three (or N) TLS members, and a client certificate for freezer-dr.

    Stopping keeps the files, for post-mortems."""

    def __init__(self, base_dir: str, ips: t.Sequence[str] | None = None,
                 size: int = 3, ports: t.Sequence[tuple[int, int]] = (),
                 wraps: t.Sequence[t.Sequence[str]] = ()) -> None:
        self._own_dir = False
        self.base_dir = base_dir
        ips = list(ips or ['127.0.0.1'] * size)
        ports = list(ports) or free_port_pairs(len(ips))
        self.ca = CertificateAuthority(os.path.join(base_dir, 'pki'))
        self.client = self.ca.issue('freezer-dr', dns=['freezer-dr'])
        initial = ','.join(f'm{i}=https://{ip}:{ports[i][1]}'
                           for i, ip in enumerate(ips))
        self.members = [
            tls_member(f'm{i}', ip, ports[i], base_dir,
                       self.ca.issue(f'm{i}', ips=[ip, '127.0.0.1'],
                                     dns=['localhost']),
                       self.ca.cert, initial,
                       wraps[i] if i < len(wraps) else ())
            for i, ip in enumerate(ips)]

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
        """A session with freezer-dr's client certificate."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self.ca.cert
        session.cert = (self.client.cert, self.client.key)
        return session
