"""A whole site on one machine, and the faults a site of three controllers
lives through, each with a host failing while it lasts.

:class:`Site` is three controllers (network namespaces), a 3-member etcd
over TLS with client certificates, one replica per controller, and the
simulated cloud (Nova, Keystone, BMCs, SMTP) in a fourth namespace on the
cloud network. :func:`run_fault` injects one fault of :data:`FAULTS`, fails
a host while it lasts, heals, and judges the run from ground truth only:
the BMC power log, Nova's migrations, the recovery record and the mailbox;
leadership from polling every replica's ``/leader``. The controllers tier
asserts on its :class:`FaultRun`; ``tests.benchmarks.controllers_faults``
prints its figures.
"""
from __future__ import annotations

import dataclasses
import os
import time
import typing as t

from freezer_dr.demo.cluster import wait_for
from freezer_dr.ha import etcd as ha_etcd
from freezer_dr.ha import store as ha_store
from tests import cloud_helpers
from tests import controller_deployment as deployment
from tests import faketime
from tests import invariants
from tests import netns
from tests import replicas as rp

ADMIN = 'cloud-admin@example.org'
TTL = deployment.TTL
#: the leader suspects a crashed host once it missed 3 heartbeats (1 s
#: apart in the simulated cloud), then watches it down for the window
SILENCE = 3 * 1.0
WINDOW = float(deployment.RECOVERY_SETTINGS['monitor']['confirm_window'])
#: how long a fault that stops every replica (quorum lost) is held
HOLD = 15.0
RECOVERY_TIMEOUT = 120.0


class Site:
    """Controllers, TLS etcd, the cloud and the replicas; :meth:`close`
    stops every process (by PID) and removes the namespaces."""

    def __init__(self, workdir: str, hosts: int = 6, instances: int = 12,
                 bmc: str = 'mixed') -> None:
        self.workdir = workdir
        self.hosts, self.instances, self.bmc = hosts, instances, bmc
        self.controllers: netns.Controllers | None = None
        self.etcd = None
        self.cloud = None
        self.replicas: deployment.ControllerReplicas | None = None
        self.members: dict[str, set[str]] = {}
        self._store: ha_store.CheckpointStore | None = None

    def start(self) -> Site:
        try:
            self.controllers = netns.Controllers(3).create()
            self.etcd = deployment.etcd_cluster(
                self.controllers, os.path.join(self.workdir, 'etcd')).start()
            self.cloud = deployment.start_cloud(
                self.controllers, os.path.join(self.workdir, 'cloud'),
                hosts=self.hosts, instances=self.instances, bmc=self.bmc)
            replicas_dir = os.path.join(self.workdir, 'replicas')
            os.makedirs(replicas_dir, exist_ok=True)
            self.replicas = deployment.ControllerReplicas(
                replicas_dir, self.controllers, self.etcd, cloud=self.cloud)
            self.replicas.start()
            self.replicas.wait_for_leader(timeout=60)
            self.members = cloud_helpers.project_emails(self.connection())
            self.mailbox = invariants.Mailbox(self.cloud.maildir)
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self.replicas is not None:
            self.replicas.stop()
        if self.cloud is not None:
            self.cloud.close()
        if self.etcd is not None:
            self.etcd.close()
        if self.controllers is not None:
            self.controllers.close()

    # -- views -------------------------------------------------------------
    def connection(self):
        return self.cloud.connection(compute_api_version='2.94')

    def store(self) -> ha_store.CheckpointStore:
        """The checkpoint store, one client for the site's life (it moves
        between members by itself)."""
        if self._store is None:
            client = ha_etcd.make_client(self.etcd.backend_url(), 2.0)
            self._store = ha_store.CheckpointStore(client,
                                                   self.replicas.cluster)
        return self._store

    def servers(self) -> dict[str, dict[str, str]]:
        return {s.id: {'host': s.compute_host, 'status': s.status,
                       'project': s.project_id}
                for s in self.connection().compute.servers(
                    all_projects=True)}

    def pick_host(self) -> str:
        """The busiest host in service."""
        conn = self.connection()
        usable = {s.host for s in conn.compute.services(
            binary='nova-compute') if s.state == 'up'
            and s.status == 'enabled' and not s.is_forced_down}
        counts: dict[str, int] = {}
        for server in self.servers().values():
            if server['host'] in usable:
                counts[server['host']] = counts.get(server['host'], 0) + 1
        return max(sorted(counts), key=counts.__getitem__)

    def recovery_ids(self) -> set[str]:
        """Ids of every recovery ended so far."""
        return {r.id for r in self.store().history(limit=1000)}

    def ended(self, host: str, known: set[str]):
        """The terminal record of ``host``'s recovery, the first not in
        ``known``, once there is one (etcd may be unreachable meanwhile).
        Not chosen by its times: a skewed leader wrote them."""
        def done():
            try:
                return next((r for r in self.store().history(limit=50)
                             if r.host == host and r.id not in known),
                            None)
            except Exception:       # noqa: BLE001 - etcd still healing
                return None
        return wait_for(done, RECOVERY_TIMEOUT,
                        f'the recovery of {host} to end', interval=0.3)

    # -- back to a whole site ----------------------------------------------
    def make_whole(self) -> None:
        """Every link up, every etcd member and replica running (with a
        true clock), a leader."""
        for ctl in self.controllers:
            ctl.heal()
            ctl.heal_cloud()
        self.etcd.start()        # the members down, then all healthy
        for replica in self.replicas:
            if replica.env != replica.base_env:     # a skewed clock
                replica.stop()
                replica.env = dict(replica.base_env)
            if not replica.running:
                replica.start()
        for replica in self.replicas:
            replica.wait_until_serving(90)
        self.replicas.wait_for_leader(timeout=60)

    def restore(self, host: str) -> None:
        cloud_helpers.restore_host(self.cloud, self.connection(), host)

    def lead(self, replica: deployment.ControllerReplica) -> None:
        """Make ``replica`` the leader: the others release the lease at
        once on SIGTERM, then come back as standbys."""
        others = [r for r in self.replicas if r is not replica]
        for other in others:
            other.terminate()
        for other in others:
            other.wait(20)
        wait_for(lambda: replica.leader().leading or None, 6 * TTL,
                 f'{replica.member_id} to lead')
        for other in others:
            other.start()
        for other in others:
            other.wait_until_serving(90)


Heal = t.Callable[[], None]


@dataclasses.dataclass(frozen=True)
class Fault:
    """A fault: ``inject(site, leader)`` makes it and returns its heal.

    ``moves``: a new replica must lead while it lasts (True), the leader
    must stay (False), or either (None). ``acts_during``: the failed host
    is recovered while the fault lasts (else only after it healed, and no
    replica acts meanwhile). ``max_leaderless``: the longest time allowed
    with no replica leading (None: no bound).
    """
    name: str
    inject: t.Callable[[Site, t.Any], Heal]
    moves: bool | None = None
    acts_during: bool = True
    max_leaderless: float | None = None


def _leader_cut(site: Site, leader) -> Heal:
    leader.controller.cut()
    return leader.controller.heal


def _standby_cut(site: Site, leader) -> Heal:
    standby = next(r for r in site.replicas if r is not leader)
    standby.controller.cut()
    return standby.controller.heal


def _raft_leader_killed(site: Site, leader) -> Heal:
    member = site.etcd.leader()
    member.kill()
    return member.start


def _quorum_lost(site: Site, leader) -> Heal:
    """Two of three members down: the leader's own and another."""
    own = site.etcd.members[leader.controller.index]
    other = next(m for m in site.etcd.members if m is not own)
    own.kill()
    other.kill()

    def heal() -> None:
        own.start()
        other.start()
    return heal


def _cloud_cut(site: Site, leader) -> Heal:
    leader.controller.cut_cloud()
    return leader.controller.heal_cloud


def _skew(offset: str) -> t.Callable[[Site, t.Any], Heal]:
    def inject(site: Site, leader) -> Heal:
        skewed = next(r for r in site.replicas if r is not leader)
        skewed.stop()
        skewed.env = {**skewed.base_env, **faketime.faketime_env(offset)}
        skewed.start().wait_until_serving(90)
        site.lead(skewed)
        return lambda: None     # make_whole restarts it on a true clock
    return inject


FAULTS = {f.name: f for f in (
    Fault('leader-cut', _leader_cut, moves=True),
    Fault('standby-cut', _standby_cut, moves=False, max_leaderless=TTL),
    Fault('raft-leader-killed', _raft_leader_killed, max_leaderless=TTL),
    Fault('quorum-lost', _quorum_lost, acts_during=False),
    Fault('leader-cloud-cut', _cloud_cut, moves=True),
    Fault('clock-skew+30s', _skew('+30s')),
    Fault('clock-skew-30s', _skew('-30s')),
)}


@dataclasses.dataclass
class FaultRun:
    """What one fault did, and what ground truth says of it."""
    fault: str
    host: str
    leader_before: str
    succession: list[str]
    #: seconds from the fault until another replica answered 200 on
    #: /leader (None: the leader stayed), and until the first leader
    #: answered 200 for the last time (None: it stayed)
    new_leader_after: float | None
    old_leader_stopped_after: float | None
    overlap: float
    leaderless: float
    #: seconds from the host failure until its recovery ended
    recovered_after: float
    recovered_during_fault: bool
    step: str
    violations: list[str]


def run_fault(site: Site, fault: Fault) -> FaultRun:
    """Inject ``fault``, fail the busiest host while it lasts (a crash:
    its BMC still reads ON, so it must be powered off), heal, judge."""
    site.make_whole()
    leader = site.replicas.wait_for_leader(timeout=60)
    host = site.pick_host()
    before = site.servers()
    mine = {sid: s for sid, s in before.items() if s['host'] == host}
    violations: list[str] = []
    with rp.LeadershipMonitor(site.replicas, interval=0.1) as monitor:
        known = site.recovery_ids()     # etcd may be down once injected
        time.sleep(0.5)
        struck = time.monotonic()
        heal = fault.inject(site, leader)
        since = time.time()
        site.cloud.fail(host, 'crash')
        service = cloud_helpers.service_of(site.connection(), host)
        not_before = invariants.stamp(service.updated_at) + SILENCE + WINDOW
        record = None
        try:
            if fault.acts_during:
                record = site.ended(host, known)
            else:
                time.sleep(HOLD)
                violations += _acted_while_down(site, host, since,
                                                monitor, struck)
        finally:
            heal()
        during = record is not None
        if record is None:
            record = site.ended(host, known)
        recovered_after = time.time() - since
        time.sleep(1.0)
    violations += _ground_truth(site, host, since, not_before, mine, record)
    new = next((m for m in monitor.succession() if m != leader.member_id),
               None)
    if fault.moves is True and new is None:
        violations.append(f'LEADER: {leader.member_id} kept leading')
    if fault.moves is False and monitor.succession() != [leader.member_id]:
        violations.append(f'LEADER: leadership changed: '
                          f'{monitor.succession()}')
    if fault.max_leaderless is not None and \
            monitor.leaderless() >= fault.max_leaderless:
        violations.append(f'LEADER: no leader for {monitor.leaderless():.1f}'
                          f' s (at most {fault.max_leaderless:g})')
    if monitor.overlap() > 0:
        violations.append(f'OVERLAP: {monitor.summary()}')
    started = monitor.first_leading(new, after=struck) if new else None
    stopped = monitor.last_leading(leader.member_id) if new else None
    site.restore(host)
    return FaultRun(
        fault=fault.name, host=host, leader_before=leader.member_id,
        succession=monitor.succession(),
        new_leader_after=(round(started - struck, 2) if started else None),
        old_leader_stopped_after=(round(stopped - struck, 2) if stopped
                                  else None),
        overlap=round(monitor.overlap(), 3),
        leaderless=round(monitor.leaderless(), 2),
        recovered_after=round(recovered_after, 2),
        recovered_during_fault=during,
        step=str(record.step), violations=violations)


def _acted_while_down(site: Site, host: str, since: float,
                      monitor: rp.LeadershipMonitor,
                      struck: float) -> list[str]:
    """With no quorum, no replica leads once a lease could have run out,
    no power command reaches the failed host and nothing is evacuated."""
    problems = [f'LEADER: {leaders} answered 200 {when - struck:.1f} s '
                f'after quorum was lost'
                for i, (when, _codes) in enumerate(monitor.rounds)
                if when > struck + TTL + 1.0
                for leaders in [monitor.leaders_at(i)] if leaders]
    commands = invariants.off_commands(site.cloud.bmc_log(), host, since)
    problems += [f'ACTED: power {c["command"]} sent to {host} without '
                 f'quorum' for c in commands]
    problems += [f'ACTED: {m["instance"]} evacuated without quorum'
                 for m in invariants.evacuations(site.connection(), host)
                 if m['created'] >= since]
    return problems[:5]


def _ground_truth(site: Site, host: str, since: float, not_before: float,
                  mine: dict[str, dict], record) -> list[str]:
    """S1, the confirmation window, S3, S4 and one mail per person."""
    migrations = invariants.evacuations(site.connection())
    log = site.cloud.bmc_log()
    problems = invariants.check_fenced_before_evacuated(
        migrations, log, host, since)
    problems += invariants.check_confirmation_window(
        migrations, log, host, since, not_before)
    problems += invariants.check_one_evacuation_each(
        migrations, host, since, list(mine))
    mails = site.mailbox.of_recovery(record.id)
    users = set().union(*(site.members.get(s['project'], set())
                          for s in mine.values()))
    problems += invariants.check_ended(record, mails, [ADMIN], users)
    problems += invariants.check_mail_once(mails, [ADMIN])
    if record.step != 'done':
        problems.append(f'LIVE: the recovery of {host} ended {record.step}:'
                        f' {record.reason}')
    return problems
