"""Safety invariants checked from ground truth, never from freezer-dr.

Ground truth is what the cloud's own parts recorded: Nova's migrations
(evacuations per instance, with their source and time), the BMC power log
(when each host was really powered off) and the mailbox (what each person
received). freezer-dr's records are used only to know which recovery ids
exist, never to decide whether something happened.
"""
from __future__ import annotations

import collections
import datetime
import email
import email.policy
import email.utils
import json
import mailbox
import os


def bmc_log(path: str) -> list[dict]:
    """Every line of the BMC power log."""
    if not os.path.exists(path):
        return []
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f if line.strip()]


def first_off(log: list[dict], host: str, since: float = 0.0) -> float | None:
    """Wall time the BMC of ``host`` first showed it off.

    Either an off command that left it off, or a status read that found
    it off already (a host that lost power is not switched off again).
    """
    times = [e['t'] for e in log
             if e['host'] == host and e['t'] >= since
             and e['command'] in ('off', 'soft', 'status')
             and e.get('power_after') == 'off' and e['result'] == 'ok']
    return min(times) if times else None


def off_commands(log: list[dict], host: str, since: float = 0.0) -> list:
    """Power-off commands sent to the BMC of ``host`` (any result)."""
    return [e for e in log if e['host'] == host and e['t'] >= since
            and e['command'] in ('off', 'soft', 'cycle', 'reset')]


def _stamp(value: str) -> float:
    stamp = datetime.datetime.fromisoformat(value.replace('Z', '+00:00'))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return stamp.timestamp()


def evacuations(conn, source_host: str | None = None) -> list[dict]:
    """Nova's evacuation migrations (optionally from one source host)."""
    found = []
    for m in conn.compute.migrations(migration_type='evacuation'):
        if source_host and m.source_compute != source_host:
            continue
        found.append({'instance': m.server_id, 'source': m.source_compute,
                      'dest': m.dest_compute, 'status': m.status,
                      'created': _stamp(m.created_at)})
    return found


def check_fenced_before_evacuated(conn, log: list[dict], host: str,
                                  since: float) -> list[str]:
    """S1: no evacuation from ``host`` before its BMC shows it off."""
    off = first_off(log, host, since)
    problems = []
    for mig in evacuations(conn, host):
        if mig['created'] < since:
            continue
        if off is None:
            problems.append(f'S1: {mig["instance"]} evacuated from {host} '
                            'but the BMC never powered it off')
        elif mig['created'] < off:
            problems.append(f'S1: {mig["instance"]} evacuated from {host} '
                            f'{off - mig["created"]:.2f} s before power-off')
    return problems


def check_one_evacuation_each(conn, host: str, since: float,
                              instance_ids: list[str]) -> list[str]:
    """S3: each instance evacuated exactly once (unless one failed)."""
    per = collections.defaultdict(list)
    for mig in evacuations(conn, host):
        if mig['created'] >= since:
            per[mig['instance']].append(mig['status'])
    problems = []
    for iid in instance_ids:
        statuses = per.get(iid, [])
        good = [s for s in statuses if s not in ('failed', 'error')]
        if len(good) != 1:
            problems.append(f'S3: instance {iid} has {len(statuses)} '
                            f'evacuations from {host}: {statuses}')
    return problems


def messages(maildir: str) -> list[email.message.EmailMessage]:
    """Every mail in the maildir, parsed with the modern email API."""
    if not maildir or not os.path.isdir(maildir):
        return []
    box = mailbox.Maildir(maildir, factory=None, create=False)
    return [email.message_from_bytes(msg.as_bytes(),
                                     policy=email.policy.default)
            for msg in box]


def mail_per_recipient(maildir: str, recovery_id: str) -> collections.Counter:
    """How many mails of one recovery each address received."""
    counts = collections.Counter()
    for msg in messages(maildir):
        key = msg.get('X-Freezer-DR-Key', '')
        if recovery_id not in key:
            continue
        for field in ('To', 'Cc'):
            for _, addr in email.utils.getaddresses(msg.get_all(field, [])):
                counts[addr.lower()] += 1
    return counts
