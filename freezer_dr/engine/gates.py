"""Safety gates: what the leader may start this cycle, as pure functions.

Nothing here talks to etcd, Nova or a BMC; the loop feeds observations in
and gets decisions (with the sentence that explains them) out, so every
branch is a unit test.
"""
from __future__ import annotations

import dataclasses
import typing as t

from freezer_dr.model import HostObservation


@dataclasses.dataclass(frozen=True)
class StormPolicy:
    """When too many hosts are down at once to trust the picture."""
    max_failed_hosts: int
    max_failed_percent: float


@dataclasses.dataclass(frozen=True)
class Decision:
    """What the gates allow this cycle."""
    start: tuple[str, ...]           # hosts whose recovery may start now
    waiting: tuple[str, ...]         # confirmed, but over max_parallel_hosts
    storm: bool
    sentences: tuple[str, ...]


def in_service(obs: HostObservation) -> bool:
    """A host that is meant to run instances (not disabled, not forced down).

    A host an operator disabled, or one freezer-dr already isolated, is out
    of service: it being down is expected and never a new failure.
    """
    return obs.status == 'enabled' and not obs.forced_down


def track_suspects(observations: list[HostObservation],
                   previous: dict[str, t.Any], busy: set[str],
                   looked: dict[str, float], mono: float, wall: float,
                   gap_limit: float,
                   ) -> tuple[dict[str, dict], dict[str, float]]:
    """How long each suspect host has been *watched* down.

    A confirmation window counts only time some leader actually watched
    (S5): each look adds the time since this leader's previous look of the
    same host (its own monotonic clock, so no clock skew between replicas
    can shorten a window), and a gap longer than ``gap_limit`` restarts
    the window. A new leader keeps its predecessor's watched time only
    when that leader's last look is recent (``previous[host]["seen"]``,
    wall time, within ``gap_limit`` either way) and adds nothing for the
    gap. A host seen up, out of service, unknown or already being
    recovered drops out (so a flapping host restarts its window).

    ``previous``: host -> {"watched": s, "seen": wall} from the store;
    ``looked``: host -> monotonic time of this leader's previous look.
    Returns the new ``previous`` and ``looked``.
    """
    tracked: dict[str, dict] = {}
    now_looked: dict[str, float] = {}
    for obs in observations:
        if obs.host in busy or not obs.is_down or not in_service(obs):
            continue
        prev = previous.get(obs.host)
        last = looked.get(obs.host)
        watched = 0.0
        if isinstance(prev, dict):
            if last is not None:
                if mono - last <= gap_limit:
                    watched = float(prev.get('watched', 0.0)) + mono - last
            elif abs(wall - float(prev.get('seen', 0.0))) <= gap_limit:
                watched = float(prev.get('watched', 0.0))
        tracked[obs.host] = {'watched': watched, 'seen': wall}
        now_looked[obs.host] = mono
    return tracked, now_looked


def decide(observations: list[HostObservation], suspects: dict[str, dict],
           live: set[str], active: int, confirm_window: float,
           storm: StormPolicy, max_parallel_hosts: int,
           recent: set[str] = frozenset()) -> Decision:
    """Which confirmed hosts may start recovering this cycle.

    ``suspects`` come from :func:`track_suspects`; ``live`` are hosts with
    a live recovery record; ``recent`` hosts whose recovery started within
    the storm window (a rolling failure, one host after the other, is a
    storm too); ``active`` counts the live recoveries past the gates
    (fencing or later). One host down is never a storm, however small the
    cloud. Hosts whose state is unknown count neither as up nor as down.
    """
    sentences = []
    counted = set(live) | set(recent)
    total = sum(1 for o in observations if not o.is_unknown
                and (in_service(o) or o.host in counted))
    down = len(suspects) + len(counted)
    limit_pct = total * storm.max_failed_percent / 100.0
    if down > 1 and (down > storm.max_failed_hosts or down > limit_pct):
        pct = 100.0 * down / total if total else 100.0
        why = (f'> {storm.max_failed_hosts} hosts'
               if down > storm.max_failed_hosts
               else f'> {storm.max_failed_percent:g} %')
        sentences.append(
            f'storm guard: {down} of {total} hosts down ({pct:.0f} %, '
            f'{why}): holding')
        return Decision((), tuple(sorted(suspects)), True, tuple(sentences))

    confirmed = []
    for host, watch in sorted(suspects.items(),
                              key=lambda kv: -kv[1]['watched']):
        age = watch['watched']
        if age >= confirm_window:
            confirmed.append(host)
        else:
            sentences.append(f'host {host} down {age:.0f} s of '
                             f'{confirm_window:g} s confirmation window')
    room = max(0, max_parallel_hosts - active)
    start, waiting = confirmed[:room], confirmed[room:]
    for host in start:
        sentences.append(f'host {host} confirmed down: starting recovery')
    if waiting:
        sentences.append(f'{len(waiting)} confirmed host(s) wait for a '
                         f'recovery slot ({max_parallel_hosts} at once): '
                         + ', '.join(waiting))
    return Decision(tuple(start), tuple(waiting), False, tuple(sentences))


def within(stamps: dict[str, float] | None, window: float,
           at: float) -> dict[str, float]:
    """The ``host: wall time`` entries of ``stamps`` younger than
    ``window`` at ``at``; one from the future (a skewed clock that wrote
    it) counts from ``at``, so it is never held longer than a window."""
    clamped = {h: min(t, at) for h, t in (stamps or {}).items()}
    return {h: t for h, t in clamped.items() if at - t < window}


def with_storm_memory(decide: t.Callable[[set[str]], Decision],
                      recent: dict[str, float], held: dict[str, float],
                      suspects: t.Iterable[str], at: float) -> Decision:
    """:func:`decide` (``decide(counted)``) counting a storm's hosts as
    down for the storm window after it: they come back in turn, and the
    last one is no single failure. ``held`` (host: when last held in a
    storm) is updated in place, only by a storm of its own (the hosts
    down now and the recoveries started in the window), never by one the
    held hosts alone make, so a storm never renews itself."""
    decision = decide(set(recent))
    if decision.storm:
        held.update(dict.fromkeys(suspects, at))
        return decision
    return decide(set(recent) | set(held))


def backoff(attempts: int, initial: float, maximum: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones."""
    return min(maximum, initial * (2 ** max(0, attempts - 1)))
