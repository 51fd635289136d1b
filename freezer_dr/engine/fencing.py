"""Fencing topology: try a node's fencing levels in order (engine policy).

Each level gets its own time budget, so a slow level never starves the
ones after it. Evidence of power-off must be fresh (S1). A power-reading
level (IPMI, Redfish, libvirt) reads the node back off within the attempt.
An operator's confirmation (the ``manual`` level) is fresh by construction
(the recovery drops it whenever a BMC reads the host ON or a fencing
attempt fails, see ``engine/operator_requests.py``), and is refused when a
level read the host ON earlier in this attempt or reads it ON right now.
"""
from __future__ import annotations

import time
import typing as t

from oslo_log import log as logging

from freezer_dr.exceptions import FenceFailed
from freezer_dr.exceptions import GateClosed
from freezer_dr.exceptions import GuardUnsatisfiable
from freezer_dr.exceptions import LeadershipLost
from freezer_dr.exceptions import StoreUnavailable
from freezer_dr.fencers.base import Fencer
from freezer_dr.model import FenceResult
from freezer_dr.model import PowerState
from freezer_dr.model import now

LOG = logging.getLogger(__name__)

Guard = t.Callable[[], None]


def fence_node(host: str, levels: t.Sequence[Fencer], level_budget: float,
               guard: Guard | None = None,
               distrusted: t.Mapping[int, str] | None = None) -> FenceResult:
    """Fence ``host`` with the first level that verifies it off, freshly.

    Every level may take up to ``level_budget`` seconds. Never raises
    FenceFailed: a failure is ``FenceResult(success=False)`` whose detail
    names each level's error. ``result.power_on_seen_at`` is set when a
    level read the host ON during this attempt; after that, a later level
    that merely *reads* the host off (no command sent) proves nothing.
    Levels in ``distrusted`` (index -> why, e.g. the readiness check found
    the entry likely points at another machine) are not tried. ``guard``
    is called right before every power command; its exception (e.g.
    LeadershipLost, GateClosed) propagates.
    """
    started = now()
    attempts: list[dict[str, t.Any]] = []
    errors: list[str] = []
    on_seen: float | None = None
    for index, level in enumerate(levels, start=1):
        name = f'level {index} ({level.driver})'
        deadline = time.monotonic() + level_budget
        if index in (distrusted or {}):
            errors.append(f'{name}: not used: {distrusted[index]}')
            attempts.append({'level': level.driver, 'index': index,
                             'result': 'distrusted', 't': now()})
            continue
        try:
            if level.operator_confirmed:
                on_seen = _refuse_if_on(host, levels, deadline, on_seen)
            result = level.fence(deadline, guard=guard or _no_guard)
        except FenceFailed as exc:
            if getattr(exc, 'power', None) == PowerState.ON:
                on_seen = max(on_seen or 0.0, exc.seen_at or now())
            LOG.warning('%s: fencing %s failed: %s', host, name, exc)
            errors.append(f'{name}: {exc}')
            attempts.append({'level': level.driver, 'index': index,
                             'result': 'failed', 'error': str(exc),
                             't': now()})
            continue
        except (LeadershipLost, GateClosed, GuardUnsatisfiable,
                StoreUnavailable):
            raise                       # the guard's word: stop here
        except Exception as exc:        # a driver's bug: try the next level
            # it may have read the host ON before it broke: a later level
            # must then power it off itself, not merely read it off (S1)
            on_seen = max(on_seen or 0.0, now())
            LOG.exception('%s: fencing %s raised', host, name)
            error = f'driver error {type(exc).__name__}: {exc}'
            errors.append(f'{name}: {error}')
            attempts.append({'level': level.driver, 'index': index,
                             'result': 'failed', 'error': error,
                             't': now()})
            continue
        if (result.success and result.power_state == PowerState.OFF
                and on_seen is not None and not level.operator_confirmed
                and not _sent_command(result)):
            why = ('reads the host off without a command, although a level '
                   'read it ON in this attempt: contradictory readings')
            errors.append(f'{name}: {why}')
            attempts.append({'level': level.driver, 'index': index,
                             'result': 'contradicted', 't': now()})
            continue
        if result.success and result.power_state == PowerState.OFF:
            attempts.append({'level': level.driver, 'index': index,
                             'result': 'off', 't': now()})
            attempts.extend({'level': level.driver, **step}
                            for step in result.attempts)
            result.attempts = attempts
            result.started_at = started
            result.evidence_at = result.evidence_at or result.finished_at
            result.power_on_seen_at = on_seen
            return result
        why = f'not verified off ({result.detail})'
        errors.append(f'{name}: {why}')
        attempts.append({'level': level.driver, 'index': index,
                         'result': 'not verified', 'error': why,
                         't': now()})
    if not levels:
        errors.append('no fencing levels')
    return FenceResult(host=host, success=False, level=None,
                       power_state=PowerState.UNKNOWN,
                       detail='; '.join(errors), attempts=attempts,
                       started_at=started, finished_at=now(),
                       power_on_seen_at=on_seen)


def _sent_command(result: FenceResult) -> bool:
    return any(step.get('action') in ('off', 'soft', 'destroy')
               for step in result.attempts)


def _no_guard() -> None:
    """Nothing stops the command (callers without a lease: tests)."""


def _refuse_if_on(host: str, levels: t.Sequence[Fencer], deadline: float,
                  on_seen: float | None) -> float | None:
    """Raise FenceFailed if ``host`` was or is read ON: an operator's word
    never outweighs a BMC that sees the host running."""
    if on_seen is None and read_power(levels, deadline) == PowerState.ON:
        on_seen = now()
    if on_seen is not None:
        raise FenceFailed(
            f'{host}: a BMC read the host ON at {time.ctime(on_seen)}: the '
            f'operator\'s confirmation is refused (check the host, then '
            f'confirm again)', power=PowerState.ON, seen_at=on_seen)
    return on_seen


def read_power(levels: t.Sequence[Fencer], deadline: float) -> PowerState:
    """Power state from the first power-reading level that answers.

    Operator-confirmation levels read nothing and are skipped; a level
    that cannot be read is skipped too (a dead BMC says nothing).
    """
    for level in levels:
        if level.operator_confirmed:
            continue
        if time.monotonic() >= deadline:
            break
        try:
            state = level.power_state(deadline)
        except FenceFailed as exc:
            LOG.info('%s: reading power via %s failed: %s', level.host,
                     level.driver, exc)
            continue
        if state != PowerState.UNKNOWN:
            return state
    return PowerState.UNKNOWN
