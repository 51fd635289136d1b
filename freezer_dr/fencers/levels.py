"""Fencing topology: try a node's fencing levels in order."""
from __future__ import annotations

import inspect
import time
import typing as t

from oslo_log import log as logging

from freezer_dr.engine.model import FenceResult
from freezer_dr.engine.model import PowerState
from freezer_dr.engine.model import now
from freezer_dr.exceptions import FenceFailed
from freezer_dr.fencers.base import Fencer
from freezer_dr.fencers.context import Guard

LOG = logging.getLogger(__name__)


def fence_node(host: str, levels: t.Sequence[Fencer], deadline: float,
               guard: Guard | None = None) -> FenceResult:
    """Fence ``host`` with the first level that verifies it off.

    ``deadline`` (monotonic) bounds all levels together. Never raises
    FenceFailed: a failure is ``FenceResult(success=False)`` whose detail
    names each level's error; ``attempts`` holds one entry per level tried
    (plus the steps of the level that succeeded). ``guard`` is called
    right before every power command (it raises, e.g. LeadershipLost, to
    stop it); its exception propagates.
    """
    started = now()
    attempts: list[dict[str, t.Any]] = []
    errors: list[str] = []
    for index, level in enumerate(levels, start=1):
        name = f'level {index} ({level.driver})'
        if time.monotonic() >= deadline:
            errors.append(f'{name}: not tried, deadline passed')
            break
        try:
            result = _fence_level(level, deadline, guard)
        except FenceFailed as exc:
            LOG.warning('%s: fencing %s failed: %s', host, name, exc)
            errors.append(f'{name}: {exc}')
            attempts.append({'level': level.driver, 'index': index,
                             'result': 'failed', 'error': str(exc),
                             't': now()})
            continue
        if result.success and result.power_state == PowerState.OFF.value:
            attempts.append({'level': level.driver, 'index': index,
                             'result': 'off', 't': now()})
            attempts.extend({'level': level.driver, **step}
                            for step in result.attempts)
            result.attempts = attempts
            result.started_at = started
            return result
        errors.append(f'{name}: not verified off ({result.detail})')
        attempts.append({'level': level.driver, 'index': index,
                         'result': 'not verified', 't': now()})
    if not levels:
        errors.append('no fencing levels')
    return FenceResult(host=host, success=False, level=None,
                       power_state=PowerState.UNKNOWN.value,
                       detail='; '.join(errors), attempts=attempts,
                       started_at=started, finished_at=now())


def _fence_level(level: Fencer, deadline: float,
                 guard: Guard | None) -> FenceResult:
    """``level.fence``, handing it the guard if the driver takes one.

    Fencers that do not accept ``guard`` (the base signature is
    ``fence(deadline)``) get it called once before they start.
    """
    if guard is None:
        return level.fence(deadline)
    if 'guard' in inspect.signature(level.fence).parameters:
        return level.fence(deadline, guard=guard)
    guard()
    return level.fence(deadline)


def read_power(levels: t.Sequence[Fencer], deadline: float) -> PowerState:
    """Power state from the first level that answers on or off."""
    for level in levels:
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
