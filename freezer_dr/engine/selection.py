"""Which instances of a failed host are evacuated, and in what order.

Pure functions over :class:`~freezer_dr.model.Instance` snapshots:
HA-marked instances (metadata key with a true value, or a tag) go first;
in ``marked`` mode only they go; instances in ERROR before the failure are
skipped unless ``include_error``.
"""
from __future__ import annotations

from collections.abc import Iterable

from oslo_utils import strutils

from freezer_dr.model import Instance
from freezer_dr.model import InstanceRecord
from freezer_dr.model import InstanceState

SELECTIONS = ('all', 'marked')


def is_marked(instance: Instance, ha_metadata_key: str | None,
              ha_tag: str | None) -> bool:
    """True when the instance is marked for HA by metadata or tag.

    The metadata value is read as a boolean ("true", "True", "1", "yes");
    an empty key or tag disables that way of marking.
    """
    if ha_metadata_key:
        value = (instance.metadata or {}).get(ha_metadata_key)
        if value is not None and strutils.bool_from_string(value):
            return True
    return bool(ha_tag) and ha_tag in (instance.tags or [])


def skip_reason(instance: Instance, selection: str, marked: bool,
                include_error: bool) -> str | None:
    """Why the instance is left where it is, or None if it is evacuated."""
    if selection not in SELECTIONS:
        raise ValueError(f'unknown selection {selection!r}; '
                         f'expected one of {", ".join(SELECTIONS)}')
    if selection == 'marked' and not marked:
        return 'not marked for HA'
    if instance.status == 'ERROR' and not include_error:
        return 'in ERROR before the failure'
    return None


def select(instances: Iterable[Instance], selection: str,
           ha_metadata_key: str | None, ha_tag: str | None,
           include_error: bool) -> list[Instance]:
    """The instances to evacuate, HA-marked ones first.

    Within each group the input order is kept, so the result is stable.
    """
    chosen: list[tuple[bool, Instance]] = []
    for instance in instances:
        marked = is_marked(instance, ha_metadata_key, ha_tag)
        if skip_reason(instance, selection, marked, include_error) is None:
            chosen.append((marked, instance))
    chosen.sort(key=lambda pair: not pair[0])
    return [instance for _, instance in chosen]


def records(servers: list[Instance], selection: str,
            ha_metadata_key: str | None, ha_tag: str | None,
            include_error: bool) -> list[InstanceRecord]:
    """The recovery's instance records: the selected ones first, in
    order, then the others marked skipped (so the report lists them)."""
    chosen = select(servers, selection, ha_metadata_key, ha_tag,
                    include_error)
    chosen_ids = {srv.id for srv in chosen}
    out = []
    for srv in chosen + [x for x in servers if x.id not in chosen_ids]:
        skipped = srv.id not in chosen_ids
        out.append(InstanceRecord(
            id=srv.id, name=srv.name, project_id=srv.project_id,
            user_id=srv.user_id, original_status=srv.status,
            marked=is_marked(srv, ha_metadata_key, ha_tag),
            state=InstanceState.SKIPPED if skipped else InstanceState.PENDING,
            error='not selected for evacuation' if skipped else None))
    return out
