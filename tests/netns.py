"""Three controllers on one machine: network namespaces, veths, bridges.

Each controller is a network namespace with three links, as a real
controller has: ``eth0`` on the *cluster* network (etcd clients and
peers), ``eth1`` on the *management* network (the replica's HTTP API,
which the test polls) and ``eth2`` on the *cloud* network (Nova, Keystone,
the BMCs and SMTP, served by the simulated cloud in a fourth namespace).
The networks are Linux bridges in the root namespace, which also has an
address on each (the test's own view). A partition takes a controller's
cluster link down; :meth:`Controller.cut_cloud` takes its cloud link down.
The management link stays, so the test keeps watching every replica's
``/leader``. Needs root and iproute2.
"""
from __future__ import annotations

import dataclasses
import os
import random
import shutil
import subprocess
import uuid


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no iproute2...)."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(['ip', *args], capture_output=True, text=True,
                          check=check, timeout=30)


def probe() -> None:
    """Raise NetnsUnavailable saying why namespaces cannot be used."""
    if os.geteuid() != 0:
        raise NetnsUnavailable('network namespaces need root')
    if shutil.which('ip') is None:
        raise NetnsUnavailable('iproute2 is not installed (apt-get install '
                               'iproute2)')
    name = f'fdr-probe-{uuid.uuid4().hex[:6]}'
    try:
        ip('netns', 'add', name)
    except subprocess.CalledProcessError as error:
        raise NetnsUnavailable(f'ip netns add failed: {error.stderr.strip()}')
    ip('netns', 'del', name, check=False)


@dataclasses.dataclass
class Controller:
    """One namespace: its name, addresses and the links to cut."""
    index: int
    netns: str
    cluster_ip: str
    mgmt_ip: str
    cluster_link: str       # host side of eth0's veth
    mgmt_link: str
    cloud_ip: str = ''
    cloud_link: str = ''

    @property
    def wrap(self) -> list[str]:
        """Command prefix that runs a program inside this controller."""
        return ['ip', 'netns', 'exec', self.netns]

    def cut(self) -> None:
        """Partition: the controller loses the cluster network."""
        ip('link', 'set', self.cluster_link, 'down')

    def heal(self) -> None:
        ip('link', 'set', self.cluster_link, 'up')

    def cut_cloud(self) -> None:
        """The controller still reaches etcd but no longer the cloud."""
        ip('link', 'set', self.cloud_link, 'down')

    def heal_cloud(self) -> None:
        ip('link', 'set', self.cloud_link, 'up')


class Controllers:
    """N controllers and the cloud's namespace on three bridges (cluster,
    management, cloud), all in 198.18.0.0/15; :meth:`close` removes
    everything."""

    def __init__(self, count: int = 3) -> None:
        tag = uuid.uuid4().hex[:4]
        net = random.randint(1, 126)
        self.tag = tag
        self.cluster_net = f'198.18.{net}'
        self.mgmt_net = f'198.19.{net}'
        self.cloud_net = f'198.18.{net + 128}'
        self.bridges = (f'fdr{tag}c', f'fdr{tag}m', f'fdr{tag}k')
        self.controllers = [
            Controller(i, f'fdr-{tag}-{i + 1}',
                       f'{self.cluster_net}.{i + 1}',
                       f'{self.mgmt_net}.{i + 1}',
                       f'fdr{tag}c{i + 1}', f'fdr{tag}m{i + 1}',
                       f'{self.cloud_net}.{i + 1}', f'fdr{tag}k{i + 1}')
            for i in range(count)]
        self.root_cluster_ip = f'{self.cluster_net}.254'
        self.root_mgmt_ip = f'{self.mgmt_net}.254'
        #: the simulated cloud's namespace, on the cloud network only
        self.cloud_netns = f'fdr-{tag}-cloud'
        self.cloud_ip = f'{self.cloud_net}.100'
        self.cloud_link = f'fdr{tag}kc'

    def __getitem__(self, index: int) -> Controller:
        return self.controllers[index]

    def __iter__(self):
        return iter(self.controllers)

    @property
    def cloud_wrap(self) -> list[str]:
        """Command prefix that runs a program in the cloud's namespace."""
        return ['ip', 'netns', 'exec', self.cloud_netns]

    def create(self) -> Controllers:
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        for bridge, address in zip(self.bridges, (
                self.root_cluster_ip, self.root_mgmt_ip,
                f'{self.cloud_net}.254'), strict=True):
            ip('link', 'add', bridge, 'type', 'bridge')
            ip('addr', 'add', f'{address}/24', 'dev', bridge)
            ip('link', 'set', bridge, 'up')
        for ctl in self.controllers:
            _namespace(ctl.netns)
            _attach(ctl.netns, ctl.cluster_link, self.bridges[0], 'eth0',
                    ctl.cluster_ip)
            _attach(ctl.netns, ctl.mgmt_link, self.bridges[1], 'eth1',
                    ctl.mgmt_ip)
            _attach(ctl.netns, ctl.cloud_link, self.bridges[2], 'eth2',
                    ctl.cloud_ip)
        _namespace(self.cloud_netns)
        _attach(self.cloud_netns, self.cloud_link, self.bridges[2], 'eth0',
                self.cloud_ip)

    def close(self) -> None:
        """Delete namespaces (their veths go with them) and bridges.

        Processes started in the namespaces must be stopped first, by PID.
        """
        for ctl in self.controllers:
            ip('netns', 'del', ctl.netns, check=False)
            for link in (ctl.cluster_link, ctl.mgmt_link, ctl.cloud_link):
                ip('link', 'del', link, check=False)
        ip('netns', 'del', self.cloud_netns, check=False)
        ip('link', 'del', self.cloud_link, check=False)
        for bridge in self.bridges:
            ip('link', 'del', bridge, check=False)


#: Linux's maximum TCP retransmission timeout (120 s by default) in each
#: namespace, where the kernel lets it be set: after a cut link comes back,
#: a connection in retransmission backoff (etcd's peer streams) would
#: otherwise stay silent for up to two minutes, and two members on the
#: majority side of the next cut could not elect a raft leader meanwhile
RTO_MAX_MS = 1000
RTO_MAX_SYSCTL = '/proc/sys/net/ipv4/tcp_rto_max_ms'


def _namespace(name: str) -> None:
    ip('netns', 'add', name)
    ip('-n', name, 'link', 'set', 'lo', 'up')
    if os.path.exists(RTO_MAX_SYSCTL):
        subprocess.run(['ip', 'netns', 'exec', name, 'sh', '-c',
                        f'echo {RTO_MAX_MS} > {RTO_MAX_SYSCTL}'],
                       check=True, capture_output=True, timeout=30)


def _attach(netns: str, link: str, bridge: str, name: str,
            address: str) -> None:
    """A veth from ``bridge`` into ``netns``, named ``name`` there."""
    peer = f'{link}p'
    ip('link', 'add', link, 'type', 'veth', 'peer', 'name', peer)
    ip('link', 'set', peer, 'netns', netns)
    ip('-n', netns, 'link', 'set', peer, 'name', name)
    ip('-n', netns, 'addr', 'add', f'{address}/24', 'dev', name)
    ip('-n', netns, 'link', 'set', name, 'up')
    ip('link', 'set', link, 'master', bridge)
    ip('link', 'set', link, 'up')
