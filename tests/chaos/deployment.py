"""The chaos deployment: etcd, the simulated cloud and three replicas, each
replica reaching etcd through its own TCP proxy (so one can be cut off).

Timings are short so a run takes seconds: a 4 s lease, a 2 s confirmation
window, 1.5 s rebuilds, fencing retried after 2 s. :class:`RecordWatch`
follows every write of a live recovery record through an etcd watch, so a
fault can be injected the moment a recovery reaches a given step.
"""
from __future__ import annotations

import base64
import json
import signal
import threading
import time
import typing as t
import urllib.parse

import requests

from freezer_dr import exceptions
from freezer_dr.demo.cluster import CLUSTER
from freezer_dr.demo.cluster import Cluster
from freezer_dr.demo.replica import ReplicaProcess
from freezer_dr.ha import etcd as ha_etcd
from freezer_dr.ha import lease
from tests import cloud_helpers
from tests.tcpproxy import TCPProxy

LEASE_TTL = 4.0
ADMIN = 'cloud-admin@example.org'
HOSTS = 6

#: replica settings: every side effect fits in the lease (S2); failures
#: are retried quickly so a healed fault lets the recovery finish
SETTINGS: dict[str, dict[str, t.Any]] = {
    'coordination': {'lease_ttl': LEASE_TTL, 'keepalive_interval': 0.7,
                     'http_timeout': 1, 'safety_margin': 0.5,
                     'poll_interval': 0.5, 'membership_timeout': 4},
    # runs follow each other every 15-40 s: only a second failure within
    # a run may count towards the storm guard (two of six hosts)
    'engine': {'poll_interval': 0.5, 'max_failed_hosts': 3,
               'max_failed_percent': 50, 'storm_window': 5,
               'fence_retry_initial': 2, 'fence_retry_max': 8},
    'monitor': {'confirm_window': 2},
    'monitor_nova': {'missed_heartbeats': 3},
    'fencing': {'call_timeout': 2, 'timeout': 10, 'power_off_timeout': 5},
    'cloud': {'api_timeout': 2.5},
    'evacuation': {'poll_interval': 0.3,
                   'instance_timeout': 60},
    'email': {'timeout': 2.5},
}
CLOUD = {'rebuild_time': 1.5, 'service_down_time': 3.0,
         'report_interval': 1.0, 'boot_delay': 1.0}
#: hosts spread round-robin over this many Nova cells (one can go down)
CELLS = 2


class RecordWatch:
    """The latest (recovery id, step) of every host, kept by an etcd watch.

    Reconnects after etcd restarts, resuming from the next revision, so no
    write is missed. ``wait(pred)`` blocks until ``pred(host, id, step)``
    holds for some write seen after the call's ``after`` sequence number.
    """

    def __init__(self, http_url: str, prefix: str) -> None:
        self.url = http_url + '/v3/watch'
        self.prefix = prefix
        self.latest: dict[str, tuple[str, str]] = {}
        self.writes: list[tuple[float, str, str, str]] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._revision = 0
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name='record-watch')

    def start(self) -> RecordWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following (the daemon thread ends with the stream: closing
        a streamed response from another thread can block)."""
        self._stop.set()

    def _run(self) -> None:
        end = self.prefix[:-1] + chr(ord(self.prefix[-1]) + 1)
        while not self._stop.is_set():
            create = {'key': _b64(self.prefix), 'range_end': _b64(end)}
            if self._revision:
                create['start_revision'] = self._revision + 1
            try:
                response = requests.post(
                    self.url, json={'create_request': create}, stream=True,
                    timeout=(2, None))
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if line:
                        self._events(json.loads(line).get('result', {}))
            except (requests.RequestException, ValueError, AttributeError):
                pass
            self._stop.wait(0.2)

    def _events(self, result: dict) -> None:
        for event in result.get('events', []):
            kv = event['kv']
            self._revision = max(self._revision, int(kv['mod_revision']))
            if event.get('type') == 'DELETE' or 'value' not in kv:
                continue
            record = json.loads(base64.b64decode(kv['value']))['record']
            with self._cond:
                self.latest[record['host']] = (record['id'], record['step'])
                self.writes.append((time.time(), record['host'],
                                    record['id'], record['step']))
                self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.writes)

    def wait(self, pred: t.Callable[[str, str, str], bool], timeout: float,
             after: int = 0) -> tuple[str, str, str] | None:
        """The first write since ``after`` matching ``pred``, or None."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, host, rid, step in self.writes[after:]:
                    if pred(host, rid, step):
                        return host, rid, step
                after = len(self.writes)
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class ChaosDeployment:
    """A :class:`Cluster` with one etcd proxy per replica."""

    def __init__(self, workdir: str, hosts: int = HOSTS,
                 instances: int = 24, bmc: str = 'ipmi') -> None:
        self.proxies: dict[int, TCPProxy] = {}
        self.cluster = Cluster(workdir, hosts=hosts, instances=instances,
                               projects=3, bmc=bmc, cloud_options={
                                   **CLOUD,
                                   'extra_args': ['--cells', str(CELLS)]},
                               overrides=SETTINGS,
                               etcd_url_of=self._proxy_url)
        self.cloud = self.cluster.cloud
        self.watch: RecordWatch | None = None
        self.members: dict[str, set[str]] = {}     # project -> emails
        self.cells: dict[str, list[str]] = {}      # Nova cell -> hosts
        self._store = None

    def _proxy_url(self, index: int, etcd_url: str) -> str:
        if index not in self.proxies:
            port = urllib.parse.urlsplit(etcd_url).port
            self.proxies[index] = TCPProxy('127.0.0.1', port).start()
        return self.proxies[index].url

    # -- life --------------------------------------------------------------
    def start(self) -> ChaosDeployment:
        try:
            self.cluster.start()
            self.watch = RecordWatch(self.cluster.etcd.client_url,
                                     f'/freezer-dr/{CLUSTER}/recoveries/'
                                     ).start()
            self.members = cloud_helpers.project_emails(self.connection())
            self.cells = {c['name']: c['hosts'] for c in
                          self.cloud.control('GET', '/sim/cells')['cells']}
            self.cluster.wait_leader(timeout=60)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        self.cluster.close()
        for proxy in self.proxies.values():
            proxy.stop()

    # -- views -------------------------------------------------------------
    @property
    def replicas(self) -> list[ReplicaProcess]:
        return self.cluster.replicas

    @property
    def etcd(self):
        return self.cluster.etcd

    def store(self):
        """The checkpoint store, read directly (never through a proxy)."""
        if self._store is None:
            self._store = self.cluster.store()
        return self._store

    def connection(self):
        return self.cluster.connection()

    def leader(self) -> ReplicaProcess | None:
        found = self.cluster.leaders()
        return found[0] if len(found) == 1 else None

    def key_holder(self) -> ReplicaProcess | None:
        """The replica named by the leader key in etcd (one read: quicker
        than asking every replica), or None."""
        try:
            found = ha_etcd.get_key(self.store().client,
                                    lease.leader_key(CLUSTER))
        except exceptions.StoreUnavailable:
            return None
        if found is None:
            return None
        member = json.loads(found[0]).get('member_id')
        return next((r for r in self.replicas if r.member_id == member
                     and r.running), None)

    def standbys(self, leader: ReplicaProcess | None = None
                 ) -> list[ReplicaProcess]:
        leader = leader or self.leader()
        return [r for r in self.replicas if r is not leader]

    def servers(self) -> dict[str, dict]:
        return {s.id: {'host': s.compute_host, 'status': s.status,
                       'project': s.project_id}
                for s in self.connection().compute.servers(
                    all_projects=True)}

    def step_of(self, recovery_id: str | None, host: str) -> str:
        """The step of ``host``'s recovery ``recovery_id`` in etcd now:
        ``detecting`` before it exists, ``ended`` once it left the live
        records; raises StoreUnavailable when etcd does not answer."""
        record = self.store().get_recovery(host)
        if record is not None and (recovery_id is None
                                   or record.id == recovery_id):
            return record.step
        return 'detecting' if recovery_id is None else 'ended'

    # -- replicas ----------------------------------------------------------
    def restart(self, replica: ReplicaProcess,
                env: dict[str, str] | None = None) -> None:
        """Stop ``replica`` (SIGTERM, hands over) and start it with ``env``
        (None: the plain environment)."""
        replica.stop()
        replica.env = dict(env or {})
        replica.start()

    # -- healing -----------------------------------------------------------
    def heal_all(self) -> None:
        """Undo every fault kind, whatever is still applied."""
        for proxy in self.proxies.values():
            proxy.set_latency(0)
            proxy.forward()
        if not self.etcd.running:
            self.etcd.start()
        self.cloud.inject(latency={'nova': 0, 'keystone': 0},
                          error_rate={'nova': 0, 'keystone': 0})
        self.cloud.control('POST', '/sim/smtp', {'mode': 'none'})
        for cell in self.cells:
            self.cloud.control('POST', f'/sim/cells/{cell}', {'down': False})
        for host in self.cloud.hosts:
            self.cloud.bmc_fault(host, 'none')
        for replica in self.replicas:
            if replica.running:
                replica.signal(signal.SIGCONT)
            if not replica.running or replica.env:
                self.restart(replica)
