"""Safety invariants checked from ground truth, never from freezer-dr.

Ground truth is what the cloud's own parts recorded: Nova's migrations
(evacuations per instance, with their source and time), the BMC power log
(when each host was really powered off, and every power reading since)
and the mailbox (what each person received). freezer-dr's records are
used only to know which recovery ids exist and what a recovery declared
(its end, its reason, an instance it gave up on), never to decide whether
something happened.

Every ``check_*`` function returns a list of problems (empty: holds),
each a sentence starting with the invariant's name (S1, S3, S4, POWER,
MAIL) and carrying its evidence.
"""
from __future__ import annotations

import collections
import dataclasses
import datetime
import email
import email.policy
import email.utils
import json
import mailbox
import os
import typing as t

#: migration statuses that mean the evacuation did not happen
FAILED_MIGRATION = ('failed', 'error')


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


def power_readings(log: list[dict], host: str,
                   since: float = 0.0) -> list[tuple[float, str]]:
    """(time, power) of every answered BMC exchange with ``host``, in order.

    A command that left the host on (a stuck BMC "accepting" off) counts
    as a reading of ON: that is what the BMC reported afterwards.
    """
    return sorted((e['t'], e['power_after']) for e in log
                  if e['host'] == host and e['t'] >= since
                  and e['result'] == 'ok'
                  and e.get('power_after') in ('on', 'off'))


def off_commands(log: list[dict], host: str, since: float = 0.0) -> list:
    """Power-off commands sent to the BMC of ``host`` (any result)."""
    return [e for e in log if e['host'] == host and e['t'] >= since
            and e['command'] in ('off', 'soft', 'cycle', 'reset')]


def stamp(value: str) -> float:
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
                      'created': stamp(m.created_at)})
    return found


#: a list of evacuations (see :func:`evacuations`), or a Connection
Migrations = t.Any


def _migrations(source: Migrations, host: str, since: float,
                until: float | None = None) -> list[dict]:
    found = source if isinstance(source, list) else evacuations(source,
                                                                 host)
    return sorted((m for m in found if m['source'] == host
                   and m['created'] >= since
                   and (until is None or m['created'] <= until)),
                  key=lambda m: m['created'])


# -- S1 ------------------------------------------------------------------
def check_fenced_before_evacuated(migrations: Migrations, log: list[dict],
                                  host: str, since: float,
                                  until: float | None = None) -> list[str]:
    """S1: every evacuation from ``host`` since ``since`` follows a BMC
    reading of OFF, and no BMC reading of ON came between the two (a
    power-off counts only if newer than the last ON reading)."""
    readings = power_readings(log, host, since)
    problems = []
    for mig in _migrations(migrations, host, since, until):
        before = [r for r in readings if r[0] <= mig['created']]
        if not any(p == 'off' for _, p in before):
            off = first_off(log, host, since)
            problems.append(
                f'S1: {mig["instance"]} evacuated from {host} at '
                f'{mig["created"]:.3f} but the BMC '
                + ('never showed it off' if off is None else
                   f'showed it off only {off - mig["created"]:.2f} s later'))
        elif before[-1][1] != 'off':
            last_off = max(t for t, p in before if p == 'off')
            problems.append(
                f'S1: {mig["instance"]} evacuated from {host} at '
                f'{mig["created"]:.3f}, {mig["created"] - before[-1][0]:.2f}'
                f' s after the BMC read it ON (last OFF at {last_off:.3f})')
    return problems


def check_confirmation_window(migrations: Migrations, log: list[dict],
                              host: str, since: float,
                              not_before: float) -> list[str]:
    """No power command to, and no evacuation from, ``host`` (failed at
    ``since``) before ``not_before``: the moment Nova first showed it down
    plus the confirmation window, whatever the replicas' clocks say."""
    problems = [f'WINDOW: power {e["command"]} sent to {host} '
                f'{not_before - e["t"]:.2f} s before its confirmation '
                f'window could end ({e["t"] - since:.2f} s after it failed)'
                for e in off_commands(log, host, since)
                if e['t'] < not_before]
    problems += [f'WINDOW: {m["instance"]} evacuated from {host} '
                 f'{not_before - m["created"]:.2f} s before its '
                 f'confirmation window could end'
                 for m in _migrations(migrations, host, since)
                 if m['created'] < not_before]
    return problems


# -- S3 ------------------------------------------------------------------
def check_one_evacuation_each(migrations: Migrations, host: str,
                              since: float, instance_ids: list[str],
                              until: float | None = None,
                              exactly: bool = True) -> list[str]:
    """S3: each instance evacuated from ``host`` at most once (a failed
    attempt aside); with ``exactly``, also at least once."""
    per = collections.defaultdict(list)
    for mig in _migrations(migrations, host, since, until):
        per[mig['instance']].append(mig['status'])
    problems = []
    for iid in sorted(set(instance_ids) | set(per)):
        statuses = per.get(iid, [])
        good = [s for s in statuses if s not in FAILED_MIGRATION]
        if len(good) > 1 or (exactly and iid in instance_ids
                             and len(good) != 1):
            problems.append(f'S3: instance {iid} has {len(statuses)} '
                            f'evacuations from {host}: {statuses}')
    return problems


# -- mail ----------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Mail:
    """One stored message, as far as the invariants care."""
    recipient: str
    key: str                  # X-Freezer-DR-Key: <recovery id>:<event>:...
    message_id: str
    subject: str


class Mailbox:
    """The sink's maildir, read incrementally (each file parsed once)."""

    def __init__(self, maildir: str) -> None:
        self.maildir = maildir
        self._seen: dict[str, list[Mail]] = {}

    def mails(self) -> list[Mail]:
        if not self.maildir or not os.path.isdir(self.maildir):
            return []
        box = mailbox.Maildir(self.maildir, factory=None, create=False)
        for key in box.keys():
            if key not in self._seen:
                self._seen[key] = _parse(box.get_bytes(key))
        return [m for mails in self._seen.values() for m in mails]

    def of_recovery(self, recovery_id: str) -> list[Mail]:
        return [m for m in self.mails()
                if m.key.split(':', 1)[0] == recovery_id]


def _parse(raw: bytes) -> list[Mail]:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = []
    for field in ('To', 'Cc'):
        for _, addr in email.utils.getaddresses(msg.get_all(field, [])):
            out.append(Mail(addr.lower(), msg.get('X-Freezer-DR-Key', ''),
                            msg.get('Message-ID', ''),
                            msg.get('Subject', '')))
    return out


def event_of(mail: Mail) -> str:
    """The event part of a mail's key (``recovered``, ``fence_failed``)."""
    parts = mail.key.split(':')
    return parts[1] if len(parts) > 1 else ''


def is_final_notice(mail: Mail) -> bool:
    """The mail that ends a recovery: its summary (``recovered``), or the
    admins' notice of a cancelled or retried one."""
    event = event_of(mail)
    return event in ('recovered', 'cancelled') or event.startswith('retry')


def check_mail_once(mails: list[Mail], admins: t.Collection[str]
                    ) -> list[str]:
    """At most one mail per person per recovery (admins: per event).

    Resends of one delivery carry the same Message-ID (mail clients fold
    them; the design allows the one in flight when a leader dies), so
    what is counted is distinct Message-IDs.
    """
    per: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for mail in mails:
        scope = event_of(mail) if mail.recipient in admins else '*'
        per[(mail.recipient, scope)].add(mail.message_id)
    return [f'MAIL: {who} received {len(ids)} different mails'
            + (f' for event {scope}' if scope != '*' else '')
            + f' of one recovery: {sorted(ids)}'
            for (who, scope), ids in sorted(per.items()) if len(ids) > 1]


def resent(mails: list[Mail]) -> int:
    """Deliveries repeated with the same Message-ID (folded duplicates)."""
    counts = collections.Counter((m.recipient, m.message_id) for m in mails)
    return sum(n - 1 for n in counts.values())


# -- S4 ------------------------------------------------------------------
def check_ended(record, mails: list[Mail], admins: t.Collection[str],
                users: t.Collection[str] = ()) -> list[str]:
    """S4: the recovery is terminal with a reason and its admins (and
    every user in ``users``) were told; or it is held and an admin alert
    about it is in the mailbox."""
    if record is None:
        return ['S4: no recovery record was ever opened']
    told = {m.recipient for m in mails}
    alerted = {m.recipient for m in mails if not is_final_notice(m)}
    if record.step == 'held':
        if not set(admins) & alerted:
            return [f'S4: recovery {record.id} held ({record.reason}) '
                    f'without an admin alert; mails: '
                    f'{sorted((m.recipient, event_of(m)) for m in mails)}']
        return []
    if record.step not in ('done', 'failed'):
        return [f'S4: recovery {record.id} stuck at {record.step} '
                f'({record.reason})']
    problems = []
    if not record.reason:
        problems.append(f'S4: recovery {record.id} ended {record.step} '
                        'without a reason')
    if record.step == 'failed' and not (
            record.failed_step or getattr(record, 'cancelled', None)):
        problems.append(f'S4: recovery {record.id} failed without naming '
                        'the failed step')
    summary = {m.recipient for m in mails if is_final_notice(m)}
    for admin in admins:
        if admin not in summary:
            problems.append(f'S4: admin {admin} got no summary of recovery '
                            f'{record.id} ({record.step}: {record.reason})')
    missing = sorted(set(users) - told)
    if missing:
        problems.append(f'S4: users {missing} got no mail about recovery '
                        f'{record.id}')
    return problems


# -- power states -------------------------------------------------------
def check_power_restored(before: dict[str, str], after: dict[str, dict],
                         evacuated: t.Iterable[str], record,
                         also_fine: dict[str, str] | None = None
                         ) -> list[str]:
    """Each evacuated instance ends in its status from ``before`` (or in
    ``also_fine``'s, e.g. what it became when its host came back), unless
    the record declares it was not restored (failed, or an error note)."""
    declared = {i.id: i for i in (record.instances if record else [])
                if i.state == 'failed' or (i.error and 'power' in i.error)}
    problems = []
    for iid in sorted(evacuated):
        now = after.get(iid, {}).get('status')
        fine = {before.get(iid), (also_fine or {}).get(iid)}
        if now not in fine and iid not in declared:
            problems.append(f'POWER: {iid} was {before.get(iid)}, is {now} '
                            f'after its evacuation, and the recovery does '
                            f'not say so')
    return problems


def mail_per_recipient(maildir: str, recovery_id: str) -> collections.Counter:
    """How many mails of one recovery each address received."""
    return collections.Counter(
        m.recipient for m in Mailbox(maildir).of_recovery(recovery_id))


def messages(maildir: str) -> list[email.message.EmailMessage]:
    """Every mail in the maildir, parsed with the modern email API."""
    if not maildir or not os.path.isdir(maildir):
        return []
    box = mailbox.Maildir(maildir, factory=None, create=False)
    return [email.message_from_bytes(msg.as_bytes(),
                                     policy=email.policy.default)
            for msg in box]
