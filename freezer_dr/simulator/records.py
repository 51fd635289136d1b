"""Plain records of the simulated cloud: identity, hosts, servers, moves.

The records hold only data; :mod:`freezer_dr.simulator.state` owns them
and changes them under its lock.
"""
from __future__ import annotations

import dataclasses
import datetime
import math
import typing as t

COMPUTE_BINARY = 'nova-compute'


def iso(ts: float | None) -> str | None:
    """Nova's timestamp format (``2012-10-29T13:42:02.000000``)."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(
        ts, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%f')


def iso_z(ts: float | None) -> str | None:
    """Timestamp with a ``Z`` and no microseconds (servers, tokens)."""
    if ts is None:
        return None
    return datetime.datetime.fromtimestamp(
        ts, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


@dataclasses.dataclass
class Project:
    id: str
    name: str
    domain_id: str = 'default'
    description: str = ''


@dataclasses.dataclass
class User:
    id: str
    name: str
    password: str
    email: str | None
    default_project_id: str | None = None
    domain_id: str = 'default'


@dataclasses.dataclass
class Role:
    id: str
    name: str


@dataclasses.dataclass(frozen=True)
class Assignment:
    user_id: str
    project_id: str
    role_id: str


@dataclasses.dataclass
class Token:
    id: str
    user_id: str
    project_id: str | None
    methods: list[str]
    issued_at: float
    expires_at: float
    audit_id: str


@dataclasses.dataclass
class Service:
    """One Nova service row (compute services belong to a Host)."""
    id: int
    uuid: str
    binary: str
    host: str
    zone: str
    disabled: bool = False
    disabled_reason: str | None = None
    forced_down: bool = False
    created_at: float = 0.0
    updated_at: float | None = None    # set for services without a Host
    cell: str = 'cell1'                # the cell database it lives in


@dataclasses.dataclass
class Host:
    """A compute node: power, the nova-compute process, its network.

    The heartbeat is computed, not ticked: while the service runs it
    reports every ``report_interval`` seconds from ``service_since``;
    once it stops, the last report is frozen in ``last_report``.
    """
    name: str
    service: Service
    hypervisor_id: int
    hypervisor_uuid: str
    host_ip: str
    cell: str = 'cell1'                # the cell its service and guests are in
    power: str = 'on'                  # ground truth: 'on' | 'off'
    compute_running: bool = True       # False after a crash
    network_ok: bool = True            # False while partitioned
    service_since: float = 0.0         # when heartbeats (re)started
    last_report: float | None = None   # frozen heartbeat while stopped
    failure: str | None = None         # 'power'|'crash'|'partition'|None
    lost_power: bool = False           # guests died with the power
    booting: bool = False              # nova-compute start still pending

    def heartbeats(self, now: float) -> bool:
        return (self.power == 'on' and self.compute_running
                and self.network_ok and now >= self.service_since)

    def last_heartbeat(self, now: float, report_interval: float) -> float:
        if self.heartbeats(now):
            ticks = math.floor((now - self.service_since) / report_interval)
            return self.service_since + ticks * report_interval
        if self.last_report is None:
            return self.service_since
        return self.last_report


@dataclasses.dataclass
class Server:
    id: str
    name: str
    project_id: str
    user_id: str
    host: str | None
    vm_state: str = 'active'           # active|stopped|error|building
    task_state: str | None = None
    power_state: int = 1               # 1 running, 4 shutdown, 0 nostate
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    tags: list[str] = dataclasses.field(default_factory=list)
    flavor_id: str = '1'
    image_id: str = ''
    created_at: float = 0.0
    updated_at: float = 0.0
    launched_at: float | None = None
    ip: str = ''
    instance_name: str = ''

    @property
    def status(self) -> str:
        return server_status(self.vm_state, self.task_state)


# vm_state -> status, with the task states that override it (as Nova's
# nova.api.openstack.common._STATE_MAP, trimmed to what is simulated).
_STATUS = {
    'active': ('ACTIVE', {'rebuilding': 'REBUILD',
                          'rebuild_spawning': 'REBUILD',
                          'powering-off': 'ACTIVE'}),
    'stopped': ('SHUTOFF', {'rebuilding': 'REBUILD',
                            'rebuild_spawning': 'REBUILD',
                            'powering-on': 'SHUTOFF'}),
    'error': ('ERROR', {'rebuilding': 'REBUILD',
                        'rebuild_spawning': 'REBUILD'}),
    'building': ('BUILD', {}),
}

STATUS_TO_VM_STATE = {'ACTIVE': 'active', 'SHUTOFF': 'stopped',
                      'ERROR': 'error', 'BUILD': 'building'}


def server_status(vm_state: str, task_state: str | None) -> str:
    default, by_task = _STATUS.get(vm_state, ('UNKNOWN', {}))
    return by_task.get(task_state or '', default)


@dataclasses.dataclass
class Migration:
    """An ``evacuation`` migration row, as ``GET /os-migrations`` shows."""
    id: int
    uuid: str
    instance_uuid: str
    source_compute: str
    dest_compute: str | None
    status: str                        # accepted|running|done|failed|...
    project_id: str
    user_id: str
    created_at: float
    updated_at: float | None = None
    migration_type: str = 'evacuation'
    dest_host: str | None = None       # destination's IP, set at claim

    def as_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)
