"""A whole freezer-dr deployment on one machine: etcd, a cloud, replicas.

Used by the demo, the end-to-end and chaos tests and the benchmarks. Every
part is a real process on loopback, controlled by PID: one etcd, the
simulated cloud (``freezer-dr-sim run``: Keystone, Nova, one IPMI or
Redfish BMC per host, an SMTP sink) and N ``freezer-dr`` replicas, each
with its own config file, HTTP port and log file.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import typing as t

from freezer_dr.demo import config as demo_config
from freezer_dr.demo import etcd_server
from freezer_dr.demo.replica import ReplicaProcess
from freezer_dr.ha import etcd as ha_etcd
from freezer_dr.ha import store as ha_store
from freezer_dr.simulator import handle
from freezer_dr.simulator.child import stop_processes

CLUSTER = 'demo'


def wait_for(predicate: t.Callable[[], t.Any], timeout: float,
             what: str, interval: float = 0.1) -> t.Any:
    """Poll ``predicate`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f'timed out after {timeout:.0f} s waiting '
                               f'for {what}')
        time.sleep(interval)


class Cluster:
    """etcd + simulated cloud + replicas, in a work directory."""

    def __init__(self, workdir: str | None = None, hosts: int = 6,
                 instances: int = 30, projects: int = 3, replicas: int = 3,
                 cloud_options: dict[str, t.Any] | None = None,
                 overrides: dict[str, dict[str, t.Any]] | None = None,
                 cloud: handle.SimCloudHandle | None = None,
                 bmc: str = 'ipmi',
                 etcd_url_of: t.Callable[[int, str], str] | None = None
                 ) -> None:
        """``cloud``: another cloud handle (e.g. the real-Nova box) to use
        instead of a simulated cloud built from the other arguments.
        ``bmc``: the simulated hosts' BMCs, ``ipmi``, ``redfish`` or
        ``mixed``. ``etcd_url_of(index, etcd_url)``: the etcd URL replica
        ``index`` uses (e.g. its own proxy in front of etcd); default
        ``etcd_url``."""
        self.workdir = workdir or tempfile.mkdtemp(prefix='freezer-dr-')
        os.makedirs(self.workdir, exist_ok=True)
        self.cloud = cloud or handle.SimCloudHandle(
            os.path.join(self.workdir, 'cloud'), hosts=hosts,
            instances=instances, projects=projects, bmc=bmc,
            **(cloud_options or {}))
        self.replica_count = replicas
        self.etcd_url_of = etcd_url_of or (lambda index, url: url)
        self.overrides = overrides or {}
        self.etcd: etcd_server.EtcdServer | None = None
        self.replicas: list[ReplicaProcess] = []

    # -- lifecycle -------------------------------------------------------
    def start(self) -> Cluster:
        try:
            data_dir = os.path.join(self.workdir, 'etcd')
            os.makedirs(data_dir, exist_ok=True)
            self.etcd = etcd_server.EtcdServer(data_dir=data_dir).start()
            self.cloud.start()
            ports = etcd_server.free_ports(self.replica_count)
            for index, port in enumerate(ports, start=1):
                self.replicas.append(self._replica(index, port).start())
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        stop_processes([r.proc for r in self.replicas])   # together
        self.cloud.close()
        if self.etcd is not None:
            self.etcd.close()

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- replicas --------------------------------------------------------
    def replica_config(self, index: int, api_port: int) -> str:
        """Write replica ``index``'s config: the cloud's plus our parts."""
        settings = {
            'DEFAULT': {'log_file': os.path.join(
                self.workdir, f'replica-{index}.log'), 'debug': 'false'},
            'coordination': {'backend_url': self.etcd_url_of(index,
                                                             self.etcd.url),
                             'cluster': CLUSTER,
                             'member_id': f'replica-{index}',
                             'lease_ttl': '5', 'http_timeout': '1',
                             'poll_interval': '0.5'},
            'api': {'bind_host': '127.0.0.1', 'bind_port': str(api_port)},
            'engine': {'poll_interval': '1'},
            'monitor': {'confirm_window': '3'},
            # every side effect must fit in the 5 s lease (S2)
            'fencing': {'call_timeout': '2'},
            'cloud': {'api_timeout': '3'},
            'email': {'timeout': '3'},
        }
        return demo_config.over_cloud(
            self.cloud.config_file,
            os.path.join(self.workdir, f'replica-{index}.conf'),
            settings, self.overrides)

    def _replica(self, index: int, port: int) -> ReplicaProcess:
        return ReplicaProcess(
            f'replica-{index}', self.replica_config(index, port), port,
            os.path.join(self.workdir, f'replica-{index}.out'))

    def index(self, replica: ReplicaProcess) -> int:
        """Replica ``replica-N``'s N (as ``etcd_url_of`` was given it)."""
        return self.replicas.index(replica) + 1

    def leaders(self) -> list[ReplicaProcess]:
        return [r for r in self.replicas if r.is_leader()]

    def wait_leader(self, timeout: float = 30,
                    exclude: ReplicaProcess | None = None
                    ) -> ReplicaProcess:
        def one():
            found = [r for r in self.leaders() if r is not exclude]
            return found[0] if len(found) == 1 else None
        return wait_for(one, timeout, 'a leader', interval=0.05)

    # -- views -----------------------------------------------------------
    def store(self) -> ha_store.CheckpointStore:
        client = ha_etcd.make_client(self.etcd.url, 2.0)
        return ha_store.CheckpointStore(client, CLUSTER)

    def connection(self, microversion: str = '2.94'):
        """An admin openstacksdk Connection to the cloud."""
        return self.cloud.connection(compute_api_version=microversion)

    def manage(self, *args: str, check: bool = True
               ) -> subprocess.CompletedProcess:
        """Run ``freezer-dr-manage`` with replica 1's config file."""
        return subprocess.run(
            [sys.executable, '-m', 'freezer_dr.cmd.manage', '--config-file',
             self.replicas[0].config_file] + list(args), check=check,
            capture_output=True, text=True, timeout=60)
