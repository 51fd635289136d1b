"""What every recovery of one leader shares: its settings, read once from
the configuration, and its collaborators (store, lease, drivers, gates)."""
from __future__ import annotations

import dataclasses
import threading
import typing as t

from freezer_dr.engine.evacuation import EvacuationSettings
from freezer_dr.engine.notify import Notification


@dataclasses.dataclass(frozen=True)
class RecoverySettings:
    """Everything a recovery needs to know from the configuration."""
    fence_level_timeout: float = 30.0     # per fencing level
    fence_retry_initial: float = 10.0
    fence_retry_max: float = 300.0
    # the longest one call of each kind may take: a side effect starts only
    # while the lease outlives it (S2)
    bmc_call_time: float = 5.0
    nova_call_time: float = 5.0
    notify_call_time: float = 5.0
    selection: str = 'all'
    ha_metadata_key: str = 'HA_Enabled'
    ha_tag: str = 'ha-enabled'
    include_error: bool = False
    evacuation: EvacuationSettings = EvacuationSettings()


@dataclasses.dataclass
class RecoveryContext:
    """The collaborators of every recovery run by one leader."""
    store: t.Any                     # freezer_dr.ha.store.CheckpointStore
    lease: t.Any                     # freezer_dr.ha.lease.LeaderLease
    evacuator: t.Any                 # freezer_dr.evacuators.base.Evacuator
    fencers: t.Callable[[str], list]  # host -> fencing levels
    notification: Notification
    settings: RecoverySettings
    #: why no fencing of this host may start now, or None
    hold_reason: t.Callable[[str], str | None]
    stop: threading.Event
    #: whether the monitor's last look saw the host down and in service
    #: (False: it is up again; None: no word on it)
    host_down: t.Callable[[str], bool | None] = lambda host: None
    #: host -> the operator's confirmation in use by its fencing attempt
    #: right now (what the manual level reads; gone when the attempt ends)
    confirmations: dict[str, float] = dataclasses.field(default_factory=dict)
    #: whether some BMC read ``host`` ON after etcd revision ``revision``
    #: (the fencing readiness checks' readings)
    power_on_since: t.Callable[[str, int], bool] = lambda host, rev: False
    #: fencing levels of ``host`` not to rely on: index -> why
    distrusted: t.Callable[[str], dict[int, str]] = lambda host: {}
