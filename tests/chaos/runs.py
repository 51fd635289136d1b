"""One chaos run: fail a host, inject a fault when its recovery reaches
the targeted step, heal it, and check the invariants from ground truth.

The step the fault hit is read from etcd right after the injection (right
before it when the fault makes etcd unreadable). The run's hosts are
returned to service at the end, whatever happened.
"""
from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
import time
import typing as t

from freezer_dr import exceptions
from freezer_dr.demo.cluster import wait_for
from tests import invariants
from tests.chaos import checks
from tests.chaos import faults
from tests.chaos.checks import SETTLE
from tests.chaos.deployment import ADMIN
from tests.chaos.deployment import CLOUD
from tests.chaos.deployment import SETTINGS
from tests.chaos.deployment import ChaosDeployment

MODES = ('power', 'crash', 'partition')
ORDER = (faults.DETECTING,) + faults.STEPS + ('held', 'done', 'failed')
#: the leader suspects a host once it missed this many heartbeats (its
#: silence counted from a look that saw its last one), then watches it
#: down for confirm_window; one whose BMC reads OFF (a power loss) is down
#: once it missed one heartbeat, with no window
SILENCE = (float(SETTINGS['monitor_nova']['missed_heartbeats'])
           * CLOUD['report_interval'])
QUIET = CLOUD['report_interval']
WINDOW = float(SETTINGS['monitor']['confirm_window'])
#: a host back up this long without a recovery needs none
NO_RECOVERY_AFTER = 20.0
#: a fault lasting this long outlasts the recovery's retries: a recovery
#: still held when it heals must have alerted an admin
LONG_FAULT = 30.0


@dataclasses.dataclass
class Outcome:
    """What one run did and found."""
    run: int
    kind: str
    target: str
    step: str
    detail: str = ''
    hosts: dict[str, str] = dataclasses.field(default_factory=dict)
    records: list[dict] = dataclasses.field(default_factory=list)
    violations: list[str] = dataclasses.field(default_factory=list)
    notes: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0


class ChaosRun:
    """Run number ``number``: fault ``kind`` aimed at step ``target``."""

    def __init__(self, d: ChaosDeployment, rng: random.Random, number: int,
                 kind: faults.FaultKind, target: str,
                 mailbox: invariants.Mailbox,
                 quarantined: set[str]) -> None:
        self.d, self.rng, self.number = d, rng, number
        self.kind, self.target = kind, target
        self.mailbox = mailbox
        self.quarantined = quarantined
        self.host = ''
        self.since: dict[str, float] = {}
        self.not_before: dict[str, float] = {}     # confirmation window end
        self.modes: dict[str, str] = {}            # how each host failed
        self.before: dict[str, dict[str, dict]] = {}   # host -> servers
        self.status0: dict[str, str] = {}     # every server, at the start
        self.spare: str | None = None         # reserved for a 2nd failure
        self.also_fine: dict[str, str] = {}
        self.known: set[str] = set()
        self.recovery_id: str | None = None
        self.notes: dict[str, t.Any] = {}
        self.mail_mark = len(mailbox.mails())

    # -- helpers the fault kinds use ---------------------------------------
    def pick_host(self, exclude: t.Collection[str] = ()) -> str:
        """A host in service with instances, not failed in this run."""
        conn = self.d.connection()
        up = {s.host for s in conn.compute.services(binary='nova-compute')
              if s.state == 'up' and s.status == 'enabled'
              and not s.is_forced_down}
        counts: dict[str, int] = {}
        for s in self.d.servers().values():
            counts[s['host']] = counts.get(s['host'], 0) + 1
        usable = up - set(exclude) - self.quarantined - set(self.since) \
            - {self.spare}

        def room(host: str) -> bool:
            """Another host of its cell can take its instances."""
            cell = next((hs for hs in self.d.cells.values() if host in hs),
                        [])
            return bool(set(cell) & usable - {host})
        return self.rng.choice(sorted(h for h in usable
                                      if counts.get(h) and room(h)))

    def fail(self, host: str) -> str:
        """Fail ``host`` now (call :meth:`note_failed` soon after)."""
        mode = self.rng.choice(MODES)
        self.since[host] = time.time()
        self.modes[host] = mode
        self.d.cloud.fail(host, mode)
        return mode

    def note_failed(self, host: str) -> None:
        """Ground truth of a failed host: its servers, and when Nova last
        heard from it (its heartbeats stopped with the failure)."""
        self.before[host] = {sid: s for sid, s in self.d.servers().items()
                             if s['host'] == host}
        (svc,) = self.d.connection().compute.services(
            host=host, binary='nova-compute')
        self.not_before[host] = invariants.stamp(svc.updated_at) + (
            QUIET if self.modes[host] == 'power' else SILENCE + WINDOW)

    def note_host_back(self) -> None:
        """Once nova-compute ran again (it stops what lost power), or the
        host was fenced again first: what its instances became (a
        legitimate 'original' state for an evacuation after that)."""
        def settled():
            return any(h['host'] == self.host and (
                h['heartbeat'] or h['power'] == 'off')
                for h in self.d.cloud.status()['hosts'])
        _poll(settled, 15.0)
        for sid, s in self.d.servers().items():
            if sid in self.before[self.host]:
                self.also_fine[sid] = s['status']

    # -- the run -----------------------------------------------------------
    def execute(self) -> Outcome:
        started = time.monotonic()
        out = Outcome(self.number, self.kind.name, self.target, '?')
        injection = None
        try:
            self.d.heal_all()
            self.wait_calm()
            if self.kind.prepare:
                self.kind.prepare(self)
            self.known = self._known_ids()
            self.host = self.pick_host()
            self.status0 = {sid: s['status']
                            for sid, s in self.d.servers().items()}
            mark = self.d.watch.mark()
            out.hosts[self.host] = self.fail(self.host)
            self.note_failed(self.host)
            before = self._reach_target(mark)
            injection = self.kind.inject(self)
            out.step = self._step_now(before)
            out.detail = injection.detail
            if injection.then:
                injection.then()
            for host in injection.extra_hosts:
                out.hosts[host] = 'second failure'
            records = self._follow(injection, out)
            out.records = [{'host': h, 'id': r.id, 'step': r.step,
                            'reason': r.reason} if r else {'host': h}
                           for h, r in records.items()]
            out.violations += checks.check_run(self, records, injection,
                                               out)
        finally:
            self.d.heal_all()
            self._return_hosts()
            out.notes.update(self.notes)
            out.seconds = round(time.monotonic() - started, 1)
        return out

    def wait_calm(self, timeout: float = 120) -> None:
        """One leader, no live recovery, every usable host in service."""
        def calm():
            if self.d.leader() is None:
                return False
            live = {r.host for r in self.d.store().recoveries()}
            return not (live - self.quarantined)
        try:
            wait_for(calm, timeout, 'a calm cluster', interval=0.3)
        except TimeoutError:
            live = {r.host for r in self.d.store().recoveries()}
            if self.d.leader() is None:
                raise
            self.quarantined |= live      # a stuck recovery: leave it be
            self.notes['quarantined'] = sorted(live)

    def _known_ids(self) -> set[str]:
        store = self.d.store()
        return ({r.id for r in store.recoveries()}
                | {r.id for r in store.history(limit=50)})

    def _reach_target(self, mark: int) -> str:
        """Wait until the new recovery of our host reaches the target step
        (or passed it); returns the step last seen."""
        if self.target == faults.DETECTING:
            # before any record can exist (a power loss needs no window)
            last = (QUIET if self.modes[self.host] == 'power'
                    else SILENCE + WINDOW) - CLOUD['report_interval']
            time.sleep(self.rng.uniform(0.1, max(0.2, last - 0.2)))
            return faults.DETECTING
        goal = ORDER.index(self.target)

        def reached(host: str, rid: str, step: str) -> bool:
            return host == self.host and rid not in self.known and \
                ORDER.index(step) >= goal
        seen = self.d.watch.wait(reached, 60, after=mark)
        if seen is None:
            return 'unreached'
        self.recovery_id = seen[1]
        if self.target == 'evacuating':      # anywhere in the long step
            time.sleep(self.rng.uniform(0, 1.5))
        return seen[2]

    def _step_now(self, fallback: str) -> str:
        try:
            record = self.d.store().get_recovery(self.host)
        except exceptions.StoreUnavailable:
            return fallback
        if record is not None and record.id not in self.known:
            self.recovery_id = record.id
            return record.step
        return faults.DETECTING if self.recovery_id is None else 'ended'

    # -- following the recovery --------------------------------------------
    def _records(self, hosts: t.Iterable[str]) -> dict[str, t.Any]:
        store = self.d.store()
        found = {r.host: r for r in store.recoveries()
                 if r.host in hosts and r.id not in self.known}
        for r in store.history(limit=20):
            if r.host in hosts and r.id not in self.known \
                    and r.host not in found:
                found[r.host] = r
        return {h: found.get(h) for h in hosts}

    def _follow(self, injection: faults.Injection,
                out: Outcome) -> dict[str, t.Any]:
        """Heal when due; return once every recovery of the run ended (or
        ``SETTLE`` s after the heal). A host brought back before a
        recovery opened may need none."""
        hosts = [self.host, *injection.extra_hosts]
        t0 = time.monotonic()
        healed_at = None
        records: dict[str, t.Any] = {h: None for h in hosts}
        while True:
            now = time.monotonic()
            try:
                records = self._records(hosts)
            except exceptions.StoreUnavailable:
                pass
            ended = all(r is not None and r.terminal
                        for r in records.values())
            if injection.host_back and records[self.host] is None and \
                    now - t0 > NO_RECOVERY_AFTER:
                ended = True
            due = (injection.heal_after is not None
                   and now - t0 >= injection.heal_after)
            if healed_at is None and (due or ended or now - t0 > SETTLE):
                if now - t0 >= LONG_FAULT:
                    self._at_heal(records, out)
                injection.heal()
                healed_at = now
            if healed_at is not None and (ended or now - healed_at >
                                          SETTLE):
                return records
            time.sleep(0.25)

    def _at_heal(self, records: dict[str, t.Any], out: Outcome) -> None:
        """A fault that outlasted the recovery's patience: a held recovery
        must have told an admin (S4), whatever happens after the heal."""
        for host, record in records.items():
            if record is None or record.step != 'held':
                continue
            out.notes.setdefault('held_at_heal', []).append(host)

            def alerted(rec=record):
                mails = (self.mailbox.of_recovery(rec.id)
                         + self._cluster_alerts())
                return mails if not invariants.check_ended(
                    rec, mails, [ADMIN]) else None
            mails = (_poll(alerted, 5.0) or self.mailbox.of_recovery(
                record.id) + self._cluster_alerts())
            out.violations += invariants.check_ended(record, mails, [ADMIN])

    def _cluster_alerts(self) -> list[invariants.Mail]:
        """Storm and blindness alerts mailed since the run began."""
        return [m for m in self.mailbox.mails()[self.mail_mark:]
                if m.key.split(':', 1)[0] in ('storm', 'blind')]

    # -- back to service ---------------------------------------------------
    def _return_hosts(self) -> None:
        """Power the run's hosts on and return them to service, as an
        operator would (``freezer-dr-manage host enable``)."""
        for host in self.since:
            try:
                self.d.cloud.recover(host)
            except Exception as error:      # noqa: BLE001 - keep going
                self.notes.setdefault('cleanup', []).append(str(error))
        for host in self.since:
            said = []

            def enabled(h=host, said=said):
                done = subprocess.run(
                    [sys.executable, '-m', 'freezer_dr.cmd.manage',
                     '--config-file', self.d.replicas[0].config_file,
                     'host', 'enable', h], capture_output=True, text=True,
                    timeout=60)
                said.append(done.stdout.strip())
                if 'evacuation migration records remain' in said[-1]:
                    # back while its evacuations ran: Nova wants its
                    # nova-compute restarted first (out of service, so no
                    # recovery starts)
                    self.d.cloud.fail(h, 'crash')
                    self.d.cloud.recover(h)
                return done.returncode == 0
            try:
                wait_for(enabled, 90, f'{host} back in service',
                         interval=1.0)
            except TimeoutError:
                self.quarantined.add(host)
                self.notes.setdefault('quarantined', []).append(
                    f'{host}: {said[-1] if said else "?"}')

def _poll(predicate: t.Callable[[], t.Any], timeout: float) -> t.Any:
    """``predicate()`` once it is truthy, or None after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    return None
