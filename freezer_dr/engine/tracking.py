"""Where one evacuation stands, judged from the server as it is now.

Pure functions used by the engine while it polls evacuating servers and
when it reconciles after a takeover:

- ``explain`` / ``classify``: 'done', 'failed' or 'in_progress';
- ``power_to_restore``: whether the server must be started or stopped to
  end in the power state it had before the failure.
"""
from __future__ import annotations

import typing as t
from collections.abc import Mapping

from freezer_dr.model import Instance

DONE = 'done'
FAILED = 'failed'
IN_PROGRESS = 'in_progress'

#: Statuses a server may rest in after a successful evacuation (ACTIVE up
#: to microversion 2.94, SHUTOFF from 2.95 or if it was SHUTOFF before).
SETTLED = ('ACTIVE', 'SHUTOFF')
#: Migration statuses Nova uses for an evacuation that went wrong.
FAILED_MIGRATION = ('failed', 'error')


def _field(record: t.Any, name: str, default: t.Any = None) -> t.Any:
    if isinstance(record, Mapping):
        return record.get(name, default)
    return getattr(record, name, default)


def explain(before: t.Any, now: Instance, source_host: str,
            migration: Mapping[str, t.Any] | None = None,
            ) -> tuple[str, str]:
    """The verdict on one requested evacuation, with a reason.

    ``before`` is the instance's record taken before the request (an
    :class:`InstanceRecord` or its dict; ``original_status`` is read),
    ``now`` the server as it is now, ``migration`` the newest evacuation
    migration of the server if the caller has it.
    """
    original = _field(before, 'original_status', 'ACTIVE')
    moved = now.host is not None and now.host != source_host
    if now.status in ('DELETED', 'SOFT_DELETED'):
        return FAILED, f'server was deleted (status {now.status})'
    if now.status == 'ERROR' and now.task_state is None:
        if moved:
            return FAILED, f'in ERROR on {now.host} after the rebuild'
        if original != 'ERROR':
            return FAILED, (f'in ERROR on {now.host or "no host"}: the '
                            f'evacuation was not carried out')
        # Was ERROR before: untouched and failed look alike; the
        # migration (if any) tells them apart, below.
    if now.task_state is not None:
        return IN_PROGRESS, f'task {now.task_state} on {now.host}'
    migration_status = _field(migration, 'status') if migration else None
    if moved:
        if now.status in SETTLED:
            return DONE, f'{now.status} on {now.host} (was {original})'
        return IN_PROGRESS, f'{now.status} on {now.host}, not settled yet'
    if migration_status in FAILED_MIGRATION:
        return FAILED, (f'evacuation migration {migration_status}; server '
                        f'still on {now.host or "no host"}')
    return IN_PROGRESS, (f'{now.status} on {now.host or "no host"}, '
                         f'not moved yet')


def classify(before: t.Any, now: Instance, source_host: str,
             migration: Mapping[str, t.Any] | None = None) -> str:
    """'done', 'failed' or 'in_progress' (see :func:`explain`)."""
    return explain(before, now, source_host, migration)[0]


def power_to_restore(original_status: str, now: Instance) -> bool | None:
    """True to start, False to stop, None when nothing is to be done.

    Only a settled server (no task) whose status differs from an ACTIVE or
    SHUTOFF original is changed; other originals (ERROR, ...) are left as
    the rebuild made them.
    """
    if now.task_state is not None or now.status not in SETTLED:
        return None
    if original_status == now.status or original_status not in SETTLED:
        return None
    return original_status == 'ACTIVE'
