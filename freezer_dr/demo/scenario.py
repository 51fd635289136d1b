"""The demo story: a host dies, the leader dies mid-evacuation, all is well.

Starts a whole deployment (:mod:`freezer_dr.demo.cluster`), crashes the
busiest compute host (nova-compute dead, BMC still on: fencing must power it
off), kills the leader with SIGKILL while the evacuation runs, shows the
recovery live and ends with a summary. Success is judged from ground
truth: every instance of the failed host must end on another host in its
original power state.
"""
from __future__ import annotations

import collections
import dataclasses
import mailbox
import os
import sys
import threading
import time
import typing as t

from freezer_dr.demo.cluster import Cluster
from freezer_dr.demo.cluster import wait_for
from freezer_dr.model import RecoveryRecord


@dataclasses.dataclass
class Outcome:
    """What happened, measured from outside freezer-dr where possible."""
    host: str
    record: RecoveryRecord | None = None
    failed_at: float = 0.0
    killed_at: float | None = None
    failover_seconds: float | None = None
    wrong: list[str] = dataclasses.field(default_factory=list)
    mails: int = 0

    @property
    def ok(self) -> bool:
        return (self.record is not None and self.record.step == 'done'
                and not self.wrong)


class Display:
    """Progress lines: rewritten in place on a terminal, else appended."""

    def __init__(self, stream: t.TextIO = sys.stdout) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.last = ''

    def say(self, text: str) -> None:
        self.end_progress()
        self.stream.write(text + '\n')
        self.stream.flush()

    def progress(self, stamp: str, text: str) -> None:
        """Show ``stamp text``; off a terminal, only when ``text`` changed."""
        if self.tty:
            self.stream.write(f'\r\033[K{stamp} {text}')
        elif text != self.last:
            self.stream.write(f'{stamp} {text}\n')
        self.stream.flush()
        self.last = text

    def end_progress(self) -> None:
        if self.tty and self.last:
            self.stream.write('\n')
        self.last = ''


def _servers(conn) -> dict[str, tuple[str, str]]:
    return {s.id: (s.compute_host, s.status)
            for s in conn.compute.servers(all_projects=True)}


def _progress_line(record: RecoveryRecord) -> str:
    counts = collections.Counter(i.state for i in record.instances)
    total = len(record.instances) - counts.get('skipped', 0)
    return (f'recovery {record.id}: {record.step:<10} evacuated '
            f'{counts.get("done", 0)}/{total}, in flight '
            f'{counts.get("requested", 0)}, failed {counts.get("failed", 0)}')


def _find_record(store, host: str, since: float) -> RecoveryRecord | None:
    record = store.get_recovery(host)
    if record is None:
        record = next((r for r in store.history(limit=10)
                       if r.host == host and r.created_at >= since), None)
    return record


def run(cluster: Cluster, mode: str = 'crash', kill_leader: bool = True,
        display: Display | None = None, timeout: float = 300) -> Outcome:
    """Play the story on a started cluster; return what happened."""
    display = display or Display()
    leader = cluster.wait_leader(timeout=30)
    display.say(f'leader elected: {leader.member_id}')
    conn = cluster.connection()
    before = _servers(conn)
    per_host = collections.Counter(host for host, _ in before.values())
    victim = per_host.most_common(1)[0][0]
    outcome = Outcome(host=victim)
    mine = {sid: st for sid, (host, st) in before.items() if host == victim}
    display.say(f'failing {victim} ({mode}): {len(mine)} instances, '
                f'{sum(1 for s in mine.values() if s == "SHUTOFF")} of '
                'them SHUTOFF')
    outcome.failed_at = time.time()
    cluster.cloud.fail(victim, mode)
    store = cluster.store()
    failover: dict[str, float] = {}

    def watch_failover(dead) -> None:
        new = cluster.wait_leader(timeout=60, exclude=dead)
        failover['seconds'] = time.time() - outcome.killed_at
        failover['member'] = new.member_id

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = _find_record(store, victim, outcome.failed_at)
        if record is not None:
            display.progress(f'[{time.time() - outcome.failed_at:5.1f} s]',
                             _progress_line(record))
            if (kill_leader and outcome.killed_at is None
                    and record.step == 'evacuating'
                    and any(i.state in ('requested', 'done')
                            for i in record.instances)):
                dead = cluster.leaders()[0] if cluster.leaders() else leader
                dead.kill()
                outcome.killed_at = time.time()
                display.say(f'killed the leader {dead.member_id} (SIGKILL) '
                            'in the middle of the evacuation')
                threading.Thread(target=watch_failover, args=(dead,),
                                 daemon=True).start()
            if record.terminal:
                outcome.record = record
                break
        time.sleep(0.2)
    display.end_progress()
    if 'seconds' in failover:
        outcome.failover_seconds = failover['seconds']
        display.say(f'{failover["member"]} took over '
                    f'{outcome.failover_seconds:.1f} s after the kill')
    after = _servers(conn)
    for sid, status in mine.items():
        host, now_status = after.get(sid, (None, None))
        if host in (None, victim) or now_status != status:
            outcome.wrong.append(f'{sid}: was {status} on {victim}, now '
                                 f'{now_status} on {host}')
    outcome.mails = _count_mail(cluster)
    return outcome


def _count_mail(cluster: Cluster) -> int:
    maildir = cluster.cloud.maildir
    if not os.path.isdir(maildir):
        return 0
    return len(mailbox.Maildir(maildir, create=False))


def summary(outcome: Outcome) -> list[str]:
    """The closing lines of the demo."""
    record = outcome.record
    if record is None:
        return [f'recovery of {outcome.host} did not finish in time']
    t0 = outcome.failed_at
    lines = [f'recovery {record.id}: {record.step} ({record.reason})']
    confirmed = record.evidence.get('confirmed_at')
    if confirmed:
        lines.append(f'  detected and confirmed  {confirmed - t0:6.1f} s '
                     'after the failure')
    fence = record.fence or {}
    if fence.get('finished_at'):
        lines.append(f'  fenced ({fence.get("level")}, power '
                     f'{fence.get("power_state")})  '
                     f'{fence["finished_at"] - t0:6.1f} s')
    requested = [i.requested_at for i in record.instances if i.requested_at]
    finished = [i.finished_at for i in record.instances if i.finished_at]
    if requested:
        lines.append(f'  first evacuation request  {min(requested) - t0:6.1f}'
                     ' s')
    if finished:
        lines.append(f'  last instance recovered   {max(finished) - t0:6.1f}'
                     ' s')
    if outcome.failover_seconds is not None:
        lines.append(f'  leader failover           '
                     f'{outcome.failover_seconds:6.1f} s')
    lines.append(f'  emails delivered          {outcome.mails:6d}')
    if outcome.wrong:
        lines.append('NOT RECOVERED as it should be:')
        lines += [f'  {w}' for w in outcome.wrong]
    else:
        lines.append(f'every instance of {outcome.host} runs on another host '
                     'in its original power state')
    return lines


def wait_for_cloud_view(cluster: Cluster, timeout: float = 30) -> None:
    """Until the cloud lists servers (it is up and populated)."""
    wait_for(lambda: _servers(cluster.connection()), timeout,
             'the simulated cloud to list its servers')
