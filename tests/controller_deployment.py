"""freezer-dr as deployed: a TLS etcd member and a replica per controller.

Each replica runs inside its controller's namespace, lists every etcd
member (its own controller's first, as an operator would) over TLS with a
client certificate, and serves its API on the management network. With a
``cloud`` (:func:`start_cloud`: the simulated cloud in its own namespace,
on the cloud network) the replicas run the whole recovery against it.
"""
from __future__ import annotations

import typing as t
import uuid

from freezer_dr.demo import config as demo_config
from freezer_dr.simulator.handle import SimCloudHandle
from tests import replicas as rp
from tests.etcdtls import TLSEtcdCluster
from tests.netns import Controller
from tests.netns import Controllers

TTL = 5.0
API_PORT = 8780
#: as on the machine image where 3-member TLS replicas never elected: a
#: bundle that does not hold our CA, which requests prefers by default
SYSTEM_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
BUNDLE_ENV = {'REQUESTS_CA_BUNDLE': SYSTEM_BUNDLE,
              'CURL_CA_BUNDLE': SYSTEM_BUNDLE}


def etcd_cluster(controllers: Controllers, base_dir: str) -> TLSEtcdCluster:
    """One TLS etcd member per controller, listening on its cluster IP."""
    return TLSEtcdCluster(
        base_dir, ips=[c.cluster_ip for c in controllers],
        ports=[(2379, 2380)] * len(controllers.controllers),
        wraps=[c.wrap for c in controllers])


#: recovery settings with a cloud: every side effect fits in the lease
#: (S2), failures are retried quickly, a blind leader hands over soon;
#: runs follow each other within a minute, each failing one host of six,
#: so the storm guard looks back 5 s (one run's failure is no storm)
RECOVERY_SETTINGS: demo_config.Sections = {
    'engine': {'poll_interval': 0.5, 'fence_retry_initial': 2,
               'fence_retry_max': 4, 'blind_handover_after': 6,
               'storm_window': 5, 'max_failed_percent': 50},
    'monitor': {'confirm_window': 2},
    'monitor_nova': {'missed_heartbeats': 3},
    'fencing': {'call_timeout': 2, 'timeout': 10, 'power_off_timeout': 5},
    'cloud': {'api_timeout': 2.5},
    'evacuation': {'poll_interval': 0.3},
    'email': {'timeout': 2.5},
}


def start_cloud(controllers: Controllers, state_dir: str, hosts: int = 6,
                instances: int = 12, bmc: str = 'mixed') -> SimCloudHandle:
    """The simulated cloud (Nova, Keystone, BMCs, SMTP) in the cloud's
    namespace, listening on its cloud-network address only."""
    return SimCloudHandle(
        state_dir, hosts=hosts, instances=instances, projects=2,
        service_down_time=3.0, report_interval=1.0, rebuild_time=1.5,
        bmc=bmc, bind_host=controllers.cloud_ip,
        wrap=controllers.cloud_wrap).start()


class ControllerReplica(rp.ReplicaProcess):
    """A replica process inside one controller's namespace."""

    def __init__(self, workdir: str, member_id: str,
                 sections: demo_config.Sections, controller: Controller,
                 env: dict[str, str] | None = None) -> None:
        #: the environment of a start on a true clock
        self.base_env = {**BUNDLE_ENV, **(env or {})}
        super().__init__(workdir, member_id, sections,
                         host=controller.mgmt_ip, wrap=controller.wrap,
                         env=self.base_env)
        self.controller = controller


class ControllerReplicas(rp.ReplicaSet):
    """One replica per controller, all of one freezer-dr cluster."""

    def __init__(self, workdir: str, controllers: Controllers,
                 etcd: TLSEtcdCluster,
                 env: t.Mapping[int, dict[str, str]] | None = None,
                 cloud: SimCloudHandle | None = None) -> None:
        self.workdir = workdir
        self.cluster = f'ctl-{uuid.uuid4().hex[:8]}'
        self.replicas = []
        n = len(controllers.controllers)
        for ctl in controllers:
            member_id = f'controller-{ctl.index + 1}'
            # own member first, then the others
            order = [ctl.index] + [i for i in range(n) if i != ctl.index]
            sections: demo_config.Sections = {
                'DEFAULT': {'debug': False},
                'coordination': {
                    'backend_url': etcd.backend_url(order),
                    'cluster': self.cluster, 'member_id': member_id,
                    'lease_ttl': TTL, 'http_timeout': 0.5,
                    'poll_interval': 0.5, 'keepalive_interval': TTL / 4,
                    'safety_margin': 0.5, 'membership_timeout': TTL},
                'api': {'bind_host': ctl.mgmt_ip, 'bind_port': API_PORT},
                'engine': {'poll_interval': 0.5},
            }
            if cloud is not None:
                sections = demo_config.merge(
                    demo_config.read_sections(cloud.config_file),
                    RECOVERY_SETTINGS, sections)
            self.replicas.append(ControllerReplica(
                workdir, member_id, sections, ctl,
                env=(env or {}).get(ctl.index)))

    def start(self) -> ControllerReplicas:
        """Start every replica; wait (generously: CI machines are shared)
        until each serves its API."""
        try:
            for replica in self.replicas:
                replica.start()
            for replica in self.replicas:
                replica.wait_until_serving(timeout=90)
        except BaseException:
            self.stop()
            raise
        return self
