"""Detection at Nova's own pace: missed heartbeats, learned per host.

Nova calls a compute service down only after ``service_down_time`` (60 s
by default) without a heartbeat. freezer-dr suspects a host earlier: when
its service has missed ``missed_heartbeats`` heartbeats in a row. The
heartbeat period is learned per host from the changes of its
``updated_at`` (differences of Nova's own timestamps, so no clock is
compared with Nova's); until learned, ``report_interval`` (Nova's default
10 s) stands in. How long a host has been silent is measured on the
leader's own monotonic clock, from the look that last saw its
``updated_at`` change (from the leader's first look after a takeover:
never shorter than the truth).

Guards against false positives: a heartbeat that is late but arrives
resets the count; when many services fall silent at once (a stalled
conductor, database or message bus) the monitor is blind, not a storm of
failures, and once it ends the hosts still quiet from it count their
silence from its end (they resume in the order of their heartbeat phase:
the last ones are not failed hosts).
"""
from __future__ import annotations

import dataclasses
import statistics
import typing as t

from freezer_dr import cloud
from freezer_dr.model import HostObservation

#: learned periods outside these bounds are not believed
MIN_PERIOD, MAX_PERIOD = 1.0, 300.0
#: intervals kept per host to learn its period from
KEPT = 6


@dataclasses.dataclass(frozen=True)
class HeartbeatPolicy:
    """From ``[monitor_nova]``: when silence makes a suspect."""
    missed_heartbeats: float = 3
    report_interval: float = 10.0


@dataclasses.dataclass
class _Beat:
    stamp: float                 # Nova's updated_at, epoch seconds
    changed_at: float            # our monotonic time of that change
    changes: int = 0             # updated_at changes seen so far
    intervals: list[float] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Silence:
    """How long one host has been silent, in its own heartbeats."""
    seconds: float
    period: float
    learned: bool

    @property
    def missed(self) -> float:
        return self.seconds / self.period


class HeartbeatTracker:
    """Per-leader memory of every host's heartbeats (not checkpointed)."""

    def __init__(self, policy: HeartbeatPolicy) -> None:
        self.policy = policy
        self._beats: dict[str, _Beat] = {}

    def forget(self) -> None:
        """A new term: start over (silence counts from the next look)."""
        self._beats = {}

    def observe(self, observations: t.Iterable[HostObservation],
                mono: float) -> dict[str, Silence]:
        """Record one look; each readable host's silence so far."""
        silences = {}
        seen = set()
        for obs in observations:
            stamp = _stamp(obs.updated_at)
            if obs.is_unknown or stamp is None:
                continue
            seen.add(obs.host)
            beat = self._beats.get(obs.host)
            if beat is None:
                beat = self._beats[obs.host] = _Beat(stamp, mono)
            elif stamp != beat.stamp:
                if stamp > beat.stamp:
                    beat.intervals = (beat.intervals + [stamp - beat.stamp]
                                      )[-KEPT:]
                beat.stamp, beat.changed_at = stamp, mono
                beat.changes += 1
            period, learned = self._period(beat)
            silences[obs.host] = Silence(max(0.0, mono - beat.changed_at),
                                         period, learned)
        for host in set(self._beats) - seen:
            del self._beats[host]
        return silences

    def excuse(self, hosts: t.Iterable[str], mono: float) -> None:
        """Count the silence of ``hosts`` from ``mono`` on: time in which
        nobody could judge them (a mass silence) does not count."""
        for host in hosts:
            beat = self._beats.get(host)
            if beat is not None:
                beat.changed_at = max(beat.changed_at, mono)

    def changes(self, host: str) -> int | None:
        """How many heartbeats of ``host`` this leader has seen (None:
        it is not being tracked)."""
        beat = self._beats.get(host)
        return None if beat is None else beat.changes

    def period(self, host: str) -> float:
        beat = self._beats.get(host)
        return self._period(beat)[0] if beat else self.policy.report_interval

    def _period(self, beat: _Beat) -> tuple[float, bool]:
        usable = [i for i in beat.intervals
                  if MIN_PERIOD <= i <= MAX_PERIOD]
        if len(usable) < 2:
            return self.policy.report_interval, False
        return statistics.median(usable), True


def silent_hosts(observations: list[HostObservation],
                 silences: dict[str, Silence],
                 policy: HeartbeatPolicy) -> dict[str, Silence]:
    """Hosts Nova still calls up whose heartbeats stopped."""
    return {o.host: silences[o.host] for o in observations
            if o.host in silences and o.state == 'up' and not o.is_down
            and silences[o.host].missed >= policy.missed_heartbeats}


def with_silence(obs: HostObservation, silence: Silence) -> HostObservation:
    """``obs`` marked down because its heartbeats stopped."""
    evidence = dict(obs.evidence, missed_heartbeats=round(silence.missed, 1),
                    silent_for=round(silence.seconds, 1),
                    heartbeat_period=round(silence.period, 1),
                    period_learned=silence.learned)
    return dataclasses.replace(obs, down=True, evidence=evidence)


def _stamp(updated_at: str | None) -> float | None:
    parsed = cloud.parse_time(updated_at)
    return parsed.timestamp() if parsed else None
