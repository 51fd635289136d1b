"""What the engine reads from the configuration, read once, as values."""
from __future__ import annotations

import dataclasses

from freezer_dr.engine import gates
from freezer_dr.engine.evacuation import EvacuationSettings
from freezer_dr.engine.heartbeats import HeartbeatPolicy
from freezer_dr.engine.preflight import ReadinessSettings
from freezer_dr.engine.recovery_context import RecoverySettings


@dataclasses.dataclass(frozen=True)
class LoopSettings:
    confirm_window: float
    storm: gates.StormPolicy
    max_parallel_hosts: int
    notify_attempts: int
    recovery: RecoverySettings
    #: the longest time between two looks at a host that still counts as
    #: watching it (longer restarts its confirmation window)
    observe_gap: float = 30.0
    readiness: ReadinessSettings = ReadinessSettings()
    #: recoveries started within this many seconds count towards a storm
    storm_window: float = 60.0
    heartbeats: HeartbeatPolicy = HeartbeatPolicy()


def settings_from_conf(conf) -> LoopSettings:
    """Read every option the engine needs, once."""
    ev, en = conf.evacuation, conf.engine
    return LoopSettings(
        confirm_window=conf.monitor.confirm_window,
        storm=gates.StormPolicy(en.max_failed_hosts, en.max_failed_percent),
        max_parallel_hosts=en.max_parallel_hosts,
        notify_attempts=en.notify_attempts,
        observe_gap=conf.coordination.lease_ttl + 2 * en.poll_interval,
        storm_window=en.storm_window,
        heartbeats=HeartbeatPolicy(
            missed_heartbeats=conf.monitor_nova.missed_heartbeats,
            report_interval=conf.monitor_nova.report_interval),
        readiness=ReadinessSettings(
            interval=conf.fencing.check_interval,
            concurrency=conf.fencing.check_concurrency,
            read_timeout=2 * conf.fencing.call_timeout),
        recovery=RecoverySettings(
            fence_level_timeout=conf.fencing.timeout,
            fence_retry_initial=en.fence_retry_initial,
            fence_retry_max=en.fence_retry_max,
            bmc_call_time=conf.fencing.call_timeout,
            nova_call_time=conf.cloud.api_timeout,
            notify_call_time=notify_call_time(conf),
            selection=ev.selection, ha_metadata_key=ev.ha_metadata_key,
            ha_tag=ev.ha_tag, include_error=ev.include_error,
            evacuation=EvacuationSettings(
                max_parallel=ev.max_parallel,
                instance_timeout=ev.instance_timeout,
                max_attempts=ev.max_attempts,
                poll_interval=ev.poll_interval,
                restore_power_state=ev.restore_power_state,
                api_timeout=conf.cloud.api_timeout)))


def notify_call_time(conf) -> float:
    """The longest one delivery of the configured notifiers may take."""
    timeouts = [conf[name].timeout for name in ('email', 'webhook')
                if name in conf.notifiers.drivers]
    return max(timeouts, default=1.0)
