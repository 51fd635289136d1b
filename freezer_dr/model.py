"""Plain records shared by the engine, the store and the drivers.

Records are dataclasses that round-trip through JSON (``to_dict`` /
``from_dict``); the store adds the schema version around them.
"""
from __future__ import annotations

import dataclasses
import enum
import time
import typing as t


def now() -> float:
    """Wall-clock seconds; every timestamp in a record uses this."""
    return time.time()


class _Text(str, enum.Enum):
    """A string enum that prints as its value (as StrEnum does)."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class Step(_Text):
    """Where a host's recovery stands."""
    CONFIRMED = 'confirmed'
    HELD = 'held'
    FENCING = 'fencing'
    ISOLATING = 'isolating'
    EVACUATING = 'evacuating'
    NOTIFYING = 'notifying'
    DONE = 'done'
    FAILED = 'failed'

    @property
    def terminal(self) -> bool:
        return self in (Step.DONE, Step.FAILED)


class InstanceState(_Text):
    """Where one instance's evacuation stands."""
    PENDING = 'pending'
    REQUESTED = 'requested'
    DONE = 'done'
    FAILED = 'failed'
    SKIPPED = 'skipped'

    @property
    def terminal(self) -> bool:
        return self in (InstanceState.DONE, InstanceState.FAILED,
                        InstanceState.SKIPPED)


class PowerState(_Text):
    ON = 'on'
    OFF = 'off'
    UNKNOWN = 'unknown'


@dataclasses.dataclass(frozen=True)
class HostObservation:
    """What a monitor saw of one compute host in one look."""
    host: str
    #: nova service state: 'up', 'down', or 'unknown' when the source
    #: answered but its data about this host cannot be interpreted (a
    #: down cell, a malformed entry): the host is blind, never a suspect
    state: str
    status: str = 'enabled'       # 'enabled' or 'disabled'
    forced_down: bool = False
    updated_at: str | None = None
    disabled_reason: str | None = None
    evidence: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    down: bool | None = None      # the monitor's verdict; None = state=='down'

    @property
    def is_unknown(self) -> bool:
        """The source could not tell this host's state (blind host)."""
        return self.state not in ('up', 'down')

    @property
    def is_down(self) -> bool:
        if self.is_unknown:
            return False
        if self.down is not None:
            return self.down
        return self.state == 'down'


@dataclasses.dataclass
class Instance:
    """A server as the evacuator sees it (a snapshot, not a live object)."""
    id: str
    name: str
    project_id: str
    user_id: str | None
    status: str                   # ACTIVE, SHUTOFF, ERROR, ...
    host: str | None
    task_state: str | None = None
    metadata: dict[str, str] = dataclasses.field(default_factory=dict)
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class FenceResult:
    """Evidence that a node is off (or why it could not be shown)."""
    host: str
    success: bool
    level: str | None = None      # the driver of the level that succeeded
    power_state: PowerState = PowerState.UNKNOWN
    detail: str = ''
    attempts: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    started_at: float = 0.0
    finished_at: float = 0.0
    #: wall time of the observation that proves the node off: the "off"
    #: read-back, or an operator's confirmation (S1 freshness is judged
    #: on it)
    evidence_at: float = 0.0
    #: wall time a level read the node ON during this attempt, if one did
    power_on_seen_at: float | None = None

    def __post_init__(self) -> None:
        self.power_state = PowerState(self.power_state)


@dataclasses.dataclass
class InstanceRecord:
    """One instance inside a recovery record."""
    id: str
    name: str
    project_id: str
    user_id: str | None = None
    original_status: str = 'ACTIVE'
    marked: bool = False          # HA-marked by metadata/tag
    state: InstanceState = InstanceState.PENDING
    target_host: str | None = None
    attempts: int = 0
    error: str | None = None
    requested_at: float | None = None          # the latest attempt
    first_requested_at: float | None = None
    known_migrations: list[str] = dataclasses.field(default_factory=list)
    finished_at: float | None = None

    def __post_init__(self) -> None:
        self.state = InstanceState(self.state)

    @classmethod
    def from_dict(cls, data: dict[str, t.Any]) -> InstanceRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass
class RecoveryRecord:
    """The live record of one host's recovery, checkpointed in etcd."""
    id: str
    host: str
    step: Step = Step.CONFIRMED
    epoch: int = 0                # epoch of the last leader that wrote it
    created_at: float = dataclasses.field(default_factory=now)
    updated_at: float = dataclasses.field(default_factory=now)
    evidence: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    fence: dict[str, t.Any] | None = None      # FenceResult as dict
    fence_attempts: int = 0
    #: the operator's confirmation that the host is off, accepted for this
    #: recovery ({"by", "at", "revision"}); dropped whenever a BMC reads the
    #: host ON or a fencing attempt fails, so one that is present is newer
    #: than both (S1)
    operator_confirmation: dict[str, t.Any] | None = None
    #: wall time a BMC last read the host ON in this recovery
    power_on_seen_at: float | None = None
    next_attempt_at: float = 0.0
    instances: list[InstanceRecord] = dataclasses.field(default_factory=list)
    notifications: dict[str, float] = dataclasses.field(default_factory=dict)
    #: admin alerts queued with the change that caused them, not yet
    #: delivered ({"key", "kind", "summary"})
    outbox: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    steps: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    reason: str | None = None     # why held / failed / done
    failed_step: Step | None = None
    finished_at: float | None = None
    #: set when an operator cancelled it before fencing: {by, reason, at}
    cancelled: dict[str, t.Any] | None = None
    reopened: int = 0             # operator retries of a failed recovery
    reopened_at: float | None = None

    #: etcd mod revision of the live record this copy was read or written
    #: as (None: not stored yet); never serialized
    revision: int | None = dataclasses.field(default=None, compare=False,
                                             repr=False)

    def __post_init__(self) -> None:
        self.step = Step(self.step)
        if self.failed_step is not None:
            self.failed_step = Step(self.failed_step)

    @property
    def terminal(self) -> bool:
        return self.step.terminal

    def to_dict(self) -> dict[str, t.Any]:
        data = dataclasses.asdict(self)
        data.pop('revision')
        return data

    @classmethod
    def from_dict(cls, data: dict[str, t.Any]) -> RecoveryRecord:
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in names}
        fields['instances'] = [InstanceRecord.from_dict(i)
                               for i in data.get('instances', [])]
        return cls(**fields)
