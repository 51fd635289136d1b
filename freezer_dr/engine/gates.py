"""Safety gates: what the leader may start this cycle, as pure functions.

Nothing here talks to etcd, Nova or a BMC; the loop feeds observations in
and gets decisions (with the sentence that explains them) out, so every
branch is a unit test.
"""
from __future__ import annotations

import dataclasses

from freezer_dr.engine.model import HostObservation


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
                   suspects: dict[str, float], busy: set[str],
                   now: float) -> dict[str, float]:
    """Update the first-seen-down time of each suspect host.

    ``suspects`` maps host -> wall time it was first seen down; a host seen
    up (or out of service, or already being recovered) drops out, so a
    flapping host restarts its confirmation window.
    """
    tracked = {}
    for obs in observations:
        if obs.host in busy or not obs.is_down or not in_service(obs):
            continue
        tracked[obs.host] = suspects.get(obs.host, now)
    return tracked


def decide(observations: list[HostObservation], suspects: dict[str, float],
           live: set[str], active: int, now: float, confirm_window: float,
           storm: StormPolicy, max_parallel_hosts: int) -> Decision:
    """Which confirmed hosts may start recovering this cycle.

    ``live`` are hosts with a live recovery record; ``active`` counts those
    recoveries that are past the gates (fencing or later). One host down
    is never a storm, however small the cloud.
    """
    sentences = []
    total = sum(1 for o in observations if in_service(o) or o.host in live)
    down = len(suspects) + len(live)
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
    for host, first_seen in sorted(suspects.items(), key=lambda kv: kv[1]):
        age = now - first_seen
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


def backoff(attempts: int, initial: float, maximum: float) -> float:
    """Seconds before the next try after ``attempts`` failed ones."""
    return min(maximum, initial * (2 ** max(0, attempts - 1)))
