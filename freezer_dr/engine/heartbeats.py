"""Detection at Nova's own pace: missed heartbeats, learned per host.

Nova calls a compute service down only after ``service_down_time`` (60 s
by default) without a heartbeat. freezer-dr suspects a host earlier: when
its service has missed ``missed_heartbeats`` heartbeats in a row. The
heartbeat period is learned per host from the changes of its
``updated_at``; until learned, ``report_interval`` (Nova's default 10 s)
stands in. Each interval is the longer of what Nova's stamps say and
what our clock saw between the two placed heartbeats: stamps written by
conductors whose clocks disagree make some intervals short, and a period
learned short would fence a host that is merely late; our clock is off by
at most one look.

How long a host has been silent is measured on the leader's monotonic
clock, from when its last heartbeat was written. Nova's clock is never
read against ours; the heartbeat is placed by what the looks prove:

- it was written before the look that first showed it returned, and
  after the previous look that still showed the old one was sent;
- every look bounds the offset between Nova's stamps and our clock from
  above (a stamp is never newer than the look that shows it); the
  smallest such bound over the last :data:`OFFSET_SPAN` seconds, added
  to the stamp, places the heartbeat within those two looks, usually to
  a small fraction of a second;
- and never more than :data:`MAX_EARLY` before the look that showed it.

So a silence is never overestimated by more than :data:`MAX_EARLY`,
however far apart the looks were (Nova down for a while, a paused
leader) or however much Nova's conductors' clocks disagree; a heartbeat
15 s late on a 10 s period, three missed, stays 4 s short of suspicion.
A new leader counts from its first look.

Guards against false positives: a heartbeat that is late but arrives
resets the count; when many services fall silent at once (a stalled
conductor, database or message bus) the monitor is blind, not a storm of
failures, and once it ends the hosts still quiet from it count their
silence from its end (they resume in the order of their heartbeat phase:
the last ones are not failed hosts).
"""
from __future__ import annotations

import collections
import dataclasses
import statistics
import typing as t

from freezer_dr import cloud
from freezer_dr.model import HostObservation

#: learned periods outside these bounds are not believed
MIN_PERIOD, MAX_PERIOD = 1.0, 300.0
#: intervals kept per host to learn its period from
KEPT = 6
#: a heartbeat is never placed more than this many seconds before the
#: look that showed it returned: the most a silence is overestimated
MAX_EARLY = 1.0
#: seconds of looks the stamp-to-clock offset bound is taken over (short
#: enough that clock drift and slewing do not matter)
OFFSET_SPAN = 120.0


@dataclasses.dataclass(frozen=True)
class HeartbeatPolicy:
    """From ``[monitor_nova]``: when silence makes a suspect."""
    missed_heartbeats: float = 3
    report_interval: float = 10.0


@dataclasses.dataclass
class _Beat:
    stamp: float                 # Nova's updated_at, epoch seconds
    changed_at: float            # our monotonic time of that heartbeat
    asked_at: float              # the last look that showed ``stamp``
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
        #: (look, the smallest "look returned - stamp" it showed)
        self._offsets: collections.deque[tuple[float, float]] = \
            collections.deque()

    def forget(self) -> None:
        """A new term: start over (silence counts from the next look)."""
        self._beats = {}
        self._offsets.clear()

    def observe(self, observations: t.Iterable[HostObservation],
                mono: float, asked: float | None = None
                ) -> dict[str, Silence]:
        """Record one look; each readable host's silence so far.

        ``mono``: when the look's answer came back; ``asked``: when it
        was sent (default ``mono``). A silence is proven up to ``asked``
        only: a slow answer never makes a host look quieter than it is.
        """
        asked = mono if asked is None else asked
        readable = [(obs, stamp) for obs in observations
                    if not obs.is_unknown
                    and (stamp := _stamp(obs.updated_at)) is not None]
        offset = self._offset(mono, [mono - stamp for _, stamp in readable])
        silences = {}
        seen = set()
        for obs, stamp in readable:
            seen.add(obs.host)
            beat = self._beats.get(obs.host)
            if beat is None:
                beat = self._beats[obs.host] = _Beat(stamp, mono, asked)
            elif stamp != beat.stamp:
                # written after the last look that did not show it was
                # sent, and before this one returned
                placed = min(mono, max(beat.asked_at, mono - MAX_EARLY,
                                       stamp + offset))
                if stamp > beat.stamp:
                    beat.intervals = (beat.intervals + [max(
                        stamp - beat.stamp, placed - beat.changed_at)]
                                      )[-KEPT:]
                beat.changed_at = placed
                beat.stamp = stamp
                beat.changes += 1
            beat.asked_at = asked
            period, learned = self._period(beat)
            # silent up to when the look was sent: the answer may have
            # been written any time after that, so no later
            silences[obs.host] = Silence(max(0.0, asked - beat.changed_at),
                                         period, learned)
        for host in set(self._beats) - seen:
            del self._beats[host]
        return silences

    def due(self, hosts: t.Iterable[str]) -> float | None:
        """When the first of ``hosts`` reaches ``missed_heartbeats`` if
        it stays silent (monotonic), or None."""
        times = [self._beats[h].changed_at + self.policy.missed_heartbeats
                 * self._period(self._beats[h])[0]
                 for h in hosts if h in self._beats]
        return min(times, default=None)

    def _offset(self, mono: float, samples: list[float]) -> float:
        """The tightest bound on "our clock - Nova's stamps" seen lately."""
        if samples:
            self._offsets.append((mono, min(samples)))
        while self._offsets and self._offsets[0][0] < mono - OFFSET_SPAN:
            self._offsets.popleft()
        return min((o for _, o in self._offsets), default=0.0)

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
