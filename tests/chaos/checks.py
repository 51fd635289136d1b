"""The verdict of one chaos run, from ground truth only.

Nova's migrations and servers, the BMC power log and the mailbox decide;
a recovery record is read only for what it declares (its end, its reason,
an instance it gave up on), which is then checked against Nova.
"""
from __future__ import annotations

import typing as t

from tests import invariants
from tests.chaos import faults
from tests.chaos.deployment import ADMIN

if t.TYPE_CHECKING:
    from tests.chaos.runs import ChaosRun
    from tests.chaos.runs import Outcome

#: how long a recovery may take once its fault healed
SETTLE = 150.0


def check_run(run: ChaosRun, records: dict[str, t.Any],
              injection: faults.Injection, out: Outcome) -> list[str]:
    """Every invariant, for every recovery of the run (ground truth)."""
    conn = run.d.connection()
    migrations = invariants.evacuations(conn)
    log = run.d.cloud.bmc_log()
    after = run.d.servers()
    problems = []
    for host, record in records.items():
        since = run.since[host]
        before = run.before[host]
        problems += invariants.check_fenced_before_evacuated(
            migrations, log, host, since)
        problems += invariants.check_confirmation_window(
            migrations, log, host, since, run.not_before[host])
        problems += invariants.check_one_evacuation_each(
            migrations, host, since, list(before), exactly=False)
        if record is None and injection.host_back:
            continue       # back before a recovery opened: none needed
        mails = run.mailbox.of_recovery(record.id) if record else []
        users = set()
        if record is not None and record.instances:
            for s in before.values():
                users |= run.d.members.get(s['project'], set())
        problems += invariants.check_ended(record, mails, [ADMIN], users)
        problems += invariants.check_mail_once(mails, [ADMIN])
        out.notes['resent'] = out.notes.get('resent', 0) + \
            invariants.resent(mails)
        evacuated = {m['instance'] for m in migrations
                     if m['source'] == host and m['created'] >= since
                     and m['status'] not in
                     invariants.FAILED_MIGRATION}
        problems += invariants.check_power_restored(
            run.status0, after, evacuated, record, run.also_fine)
        problems += declared_truly(record, host, before, after, evacuated)
        if record is not None and record.step == 'failed':
            out.notes.setdefault('failed', []).append(record.reason)
        if record is not None and record.step == 'failed' and \
                no_valid_host(record, migrations, since):
            out.notes.setdefault('no_valid_host', []).append(host)
        elif run.kind.completes and (record is None
                                     or record.step != 'done'):
            ended = (f'{record.step}: {record.reason}' if record
                     else 'never opened')
            problems.append(
                f'LIVE: recovery of {host} did not end done '
                f'{SETTLE:.0f} s after a {run.kind.name} fault healed:'
                f' {ended}')
    return problems


def no_valid_host(record, migrations: list[dict], since: float) -> bool:
    """Nova found no host for every instance the recovery gave up on
    (its migrations ended ``error`` with no destination): the cloud,
    not the recovery, was short."""
    failed = {i.id for i in record.instances if i.state == 'failed'}
    refused = {m['instance'] for m in migrations
               if m['source'] == record.host and m['created'] >= since
               and m['status'] == 'error' and not m['dest']}
    return bool(failed) and failed <= refused


def declared_truly(record, host: str, before: dict, after: dict,
                   evacuated: set[str]) -> list[str]:
    """What a finished recovery says of each instance, against Nova."""
    if record is None or not record.terminal:
        return []
    problems = []
    for inst in record.instances:
        where = after.get(inst.id, {}).get('host')
        if inst.state == 'done' and (inst.id not in evacuated
                                     or where in (None, host)):
            problems.append(f'S4: recovery {record.id} says {inst.id} '
                            f'was evacuated; Nova has it on {where} '
                            f'with evacuations {inst.id in evacuated}')
    declared = {i.id for i in record.instances}
    if record.step == 'done' and record.fence:
        for iid in before:
            if iid not in declared and after.get(iid, {}).get(
                    'host') == host:
                problems.append(f'S4: recovery {record.id} ended done '
                                f'but left {iid} on {host} unsaid')
    return problems
