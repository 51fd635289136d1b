"""The sentences a leader cycle says about hosts and recoveries."""
from __future__ import annotations

from freezer_dr.engine import gates
from freezer_dr.model import HostObservation
from freezer_dr.model import InstanceState
from freezer_dr.model import RecoveryRecord
from freezer_dr.model import Step


def describe(record: RecoveryRecord) -> str:
    if record.step == Step.EVACUATING:
        total = sum(1 for i in record.instances
                    if i.state != InstanceState.SKIPPED)
        done = sum(1 for i in record.instances
                   if i.state == InstanceState.DONE)
        return f'recovering {record.host}: evacuating {done}/{total}'
    if record.step == Step.HELD:
        return f'host {record.host} held: {record.reason}'
    return f'recovering {record.host}: {record.step.value}'


def unknown_hosts(unknown: dict[str, str]) -> str:
    names = sorted(unknown)
    shown = ', '.join(names[:5]) + (', ...' if len(names) > 5 else '')
    return f'{len(names)} host(s) blind (state unknown): {shown}'


def all_well(observations: list[HostObservation]) -> str:
    out = [o.host for o in observations if not gates.in_service(o)]
    text = f'all {len(observations) - len(out)} hosts in service up'
    return text + (f' ({len(out)} out of service)' if out else '')
