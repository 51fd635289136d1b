"""The simulated compute cloud's state and the life of its hosts.

One :class:`Compute` owns every host, service, server and migration, with
one lock; the HTTP apps and the control API all read and change it, so a
change made through one is seen by every client at once. Host heartbeats
follow Nova's servicegroup rule: a service is ``up`` while its last
report is at most ``service_down_time`` old and it is not forced down.
"""
from __future__ import annotations

import dataclasses
import random
import threading
import time
import typing as t
import uuid

from oslo_log import log as logging

from freezer_dr.simulator import records as rec
from freezer_dr.simulator.events import EventQueue

LOG = logging.getLogger(__name__)

FAILURE_MODES = ('power', 'crash', 'partition')
APIS = ('nova', 'keystone')


class ApiError(Exception):
    """An error the simulated API answers with (HTTP status + message)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclasses.dataclass
class Settings:
    """Timing of the simulated cloud (seconds)."""
    report_interval: float = 1.0
    service_down_time: float = 3.0
    boot_delay: float = 1.0          # power on -> first heartbeat
    rebuild_time: float = 1.0        # evacuation accepted -> done
    power_action_time: float = 0.2   # os-start / os-stop
    rpc_timeout: float = 60.0        # a call to a dead nova-compute
    region: str = 'RegionOne'


@dataclasses.dataclass
class Faults:
    """Injected faults: per-API latency and error rate, rebuild failures."""
    latency: dict[str, float] = dataclasses.field(default_factory=dict)
    error_rate: dict[str, float] = dataclasses.field(default_factory=dict)
    error_status: int = 500
    evacuate_failure_rate: float = 0.0

    def as_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)


class Compute:
    """Hosts, services, servers and migrations, guarded by ``lock``."""

    def __init__(self, settings: Settings, seed: int | None = None) -> None:
        self.settings = settings
        self.faults = Faults()
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self.events = EventQueue(self.lock)
        self.hosts: dict[str, rec.Host] = {}
        self.services: list[rec.Service] = []
        self.servers: dict[str, rec.Server] = {}
        self.by_host: dict[str, set[str]] = {}
        self.migrations: list[rec.Migration] = []
        self.claims: dict[str, int] = {}    # evacuations heading to a host
        self.cells: list[str] = ['cell1']
        self.down_cells: set[str] = set()   # cells Nova cannot reach
        self._generation: dict[str, int] = {}
        self.started_at = time.time()

    # -- identity helpers ----------------------------------------------------
    def new_uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    # -- building the cloud --------------------------------------------------
    def add_service(self, binary: str, host: str, zone: str = 'internal',
                    cell: str = 'cell1') -> rec.Service:
        svc = rec.Service(id=len(self.services) + 1, uuid=self.new_uuid(),
                          binary=binary, host=host, zone=zone,
                          created_at=self.started_at,
                          updated_at=self.started_at, cell=cell)
        self.services.append(svc)
        return svc

    def add_host(self, name: str, cell: str = 'cell1') -> rec.Host:
        with self.lock:
            if name in self.hosts:
                raise ApiError(409, f'Host {name} already exists.')
            if cell not in self.cells:
                raise ApiError(400, f'Unknown cell {cell!r}.')
            svc = self.add_service(rec.COMPUTE_BINARY, name, zone='nova',
                                   cell=cell)
            svc.updated_at = None
            n = len(self.hosts) + 1
            host = rec.Host(
                name=name, service=svc, hypervisor_id=n,
                hypervisor_uuid=self.new_uuid(),
                host_ip=f'10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}',
                service_since=time.time(), cell=cell)
            self.hosts[name] = host
            self.by_host[name] = set()
            self._generation[name] = 0
            return host

    def host(self, name: str) -> rec.Host:
        try:
            return self.hosts[name]
        except KeyError:
            raise ApiError(404, f'Compute host {name} could not be found.')

    def server(self, server_id: str) -> rec.Server:
        try:
            return self.servers[server_id]
        except KeyError:
            raise ApiError(404, f'Instance {server_id} could not be found.')

    def place(self, server: rec.Server, host: str | None) -> None:
        """Move ``server`` to ``host`` in the host index."""
        if server.host is not None:
            self.by_host[server.host].discard(server.id)
        server.host = host
        if host is not None:
            self.by_host[host].add(server.id)

    # -- cells ---------------------------------------------------------------
    def set_cell_down(self, cell: str, down: bool) -> None:
        """Make Nova unable (or able again) to reach ``cell``'s database:
        its records are listed as Nova lists an unreachable cell's
        (``nova_cells``); its computes keep running and reporting."""
        with self.lock:
            if cell not in self.cells:
                raise ApiError(404, f'Cell {cell} could not be found.')
            (self.down_cells.add if down else self.down_cells.discard)(cell)
            LOG.info('cell %s %s', cell, 'down' if down else 'up')

    def in_down_cell(self, host: str | None) -> bool:
        """Whether ``host`` (a compute host name) is in a down cell."""
        h = self.hosts.get(host or '')
        return h is not None and h.cell in self.down_cells

    def cell_summary(self, cell: str) -> dict[str, t.Any]:
        return {'name': cell, 'down': cell in self.down_cells,
                'hosts': [h.name for h in self.hosts.values()
                          if h.cell == cell]}

    # -- service liveness (Nova's servicegroup DB driver) --------------------
    def service_updated_at(self, svc: rec.Service,
                           now: float) -> float | None:
        host = self.hosts.get(svc.host)
        if svc.binary == rec.COMPUTE_BINARY and host is not None:
            return host.last_heartbeat(now, self.settings.report_interval)
        return now if svc.updated_at is not None else None

    def service_up(self, svc: rec.Service, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        if svc.forced_down:
            return False
        last = self.service_updated_at(svc, now)
        if last is None:
            return False
        return abs(now - last) <= self.settings.service_down_time

    def host_up(self, name: str, now: float | None = None) -> bool:
        return self.service_up(self.hosts[name].service, now)

    # -- host life -----------------------------------------------------------
    def _freeze_heartbeat(self, host: rec.Host, now: float) -> None:
        if host.heartbeats(now):
            host.last_report = host.last_heartbeat(
                now, self.settings.report_interval)
        self._generation[host.name] += 1     # cancels a pending start
        host.booting = False

    def _start_service(self, host: rec.Host, now: float,
                       delay: float) -> None:
        """nova-compute (re)starts ``delay`` seconds from ``now``."""
        host.compute_running = True
        host.booting = True
        host.service_since = now + delay
        gen = self._generation[host.name] = self._generation[host.name] + 1

        def started() -> None:
            if self._generation[host.name] == gen:
                self._on_compute_start(host)
        self.events.at(host.service_since, started)

    def _on_compute_start(self, host: rec.Host) -> None:
        """What nova-compute does at start: clean up, sync power states."""
        for mig in self.migrations:
            if (mig.source_compute == host.name and mig.status == 'done'
                    and mig.migration_type == 'evacuation'):
                mig.status = 'completed'
                mig.updated_at = time.time()
        if host.lost_power:
            for sid in self.by_host[host.name]:
                server = self.servers[sid]
                if server.vm_state == 'active' and server.task_state is None:
                    server.vm_state = 'stopped'
                    server.power_state = 4
                    server.updated_at = time.time()
            host.lost_power = False
        host.failure = None if host.network_ok else 'partition'
        host.booting = False
        LOG.info('nova-compute on %s started', host.name)

    def set_power(self, name: str, power: str) -> rec.Host:
        """Ground-truth power change (BMCs and the control API use it)."""
        if power not in ('on', 'off'):
            raise ApiError(400, f'Invalid power state {power!r}.')
        with self.lock:
            host = self.host(name)
            now = time.time()
            if power == host.power:
                return host
            if power == 'off':
                self._freeze_heartbeat(host, now)
                host.power = 'off'
                host.failure = 'power'
                host.lost_power = True
            else:
                host.power = 'on'
                self._start_service(host, now, self.settings.boot_delay)
            LOG.info('host %s powered %s', name, power)
            return host

    def fail(self, name: str, mode: str) -> rec.Host:
        if mode not in FAILURE_MODES:
            raise ApiError(400, f'Invalid failure mode {mode!r}: use one '
                                f'of {", ".join(FAILURE_MODES)}.')
        with self.lock:
            host = self.host(name)
            now = time.time()
            if mode == 'power':
                return self.set_power(name, 'off')
            self._freeze_heartbeat(host, now)
            if mode == 'crash':
                host.compute_running = False
            else:
                host.network_ok = False
            host.failure = mode
            LOG.info('host %s failed: %s', name, mode)
            return host

    def recover(self, name: str) -> rec.Host:
        """Power on, restart nova-compute and heal the network."""
        with self.lock:
            host = self.host(name)
            now = time.time()
            host.network_ok = True
            if host.power == 'off':
                self.set_power(name, 'on')
            elif not host.compute_running:
                self._start_service(host, now, self.settings.boot_delay)
            elif host.failure == 'partition':
                # nova-compute never stopped: it reports again at once and
                # cleans nothing up (its guests kept running all along)
                host.service_since = now
            host.failure = None
            return host

    # -- snapshots -----------------------------------------------------------
    def host_summary(self, host: rec.Host, now: float) -> dict[str, t.Any]:
        svc = host.service
        return {
            'host': host.name, 'cell': host.cell, 'power': host.power,
            'failure': host.failure,
            'heartbeat': host.heartbeats(now),
            'service_state': 'up' if self.service_up(svc, now) else 'down',
            'forced_down': svc.forced_down,
            'status': 'disabled' if svc.disabled else 'enabled',
            'disabled_reason': svc.disabled_reason,
            'instances': len(self.by_host[host.name]),
        }

    def status(self) -> dict[str, t.Any]:
        with self.lock:
            now = time.time()
            hosts = [self.host_summary(h, now) for h in self.hosts.values()]
            counts: dict[str, int] = {}
            for server in self.servers.values():
                counts[server.status] = counts.get(server.status, 0) + 1
            return {'hosts': hosts, 'servers': counts,
                    'migrations': len(self.migrations),
                    'cells': [self.cell_summary(c) for c in self.cells],
                    'settings': dataclasses.asdict(self.settings),
                    'faults': self.faults.as_dict()}
