"""The chaos fault table: what each fault does, which recovery steps it
can reach, how long it lasts and how it is healed.

A fault kind is one :class:`FaultKind` entry in :data:`KINDS`; its
``inject(run)`` applies the fault the moment the recovery reaches the
targeted step and returns an :class:`Injection` saying how and when to
heal it. Durations are drawn so that most faults heal while the recovery
can still finish; a few outlast it on purpose (the recovery must then be
held with an admin alert, never evacuate without a fence).
"""
from __future__ import annotations

import dataclasses
import signal
import typing as t

from tests.chaos.deployment import LEASE_TTL
from tests.faketime import faketime_env

if t.TYPE_CHECKING:
    from tests.chaos.runs import ChaosRun

STEPS = ('confirmed', 'fencing', 'isolating', 'evacuating', 'notifying')
#: the host is failing but no recovery record exists yet
DETECTING = 'detecting'
#: the steps where the BMC matters (later, only a takeover reads it)
FENCE_STEPS = ('confirmed', 'fencing')
#: the steps a mail fault can reach (it lasts into notifying)
MAIL_STEPS = ('evacuating', 'notifying')


@dataclasses.dataclass
class Injection:
    """An applied fault."""
    detail: str
    heal: t.Callable[[], None] = lambda: None
    #: seconds from injection to heal; None: once the recovery ended
    heal_after: float | None = 0.0
    #: runs right after the step was read (e.g. wait for a takeover)
    then: t.Callable[[], None] | None = None
    #: other hosts failed by the fault (their recoveries are checked too)
    extra_hosts: tuple[str, ...] = ()
    #: the failed host was brought back during the recovery
    host_back: bool = False


@dataclasses.dataclass(frozen=True)
class FaultKind:
    """One kind of fault of the chaos table."""
    name: str
    inject: t.Callable[[ChaosRun], Injection]
    steps: tuple[str, ...] = STEPS
    #: once healed, the recovery must end ``done`` (liveness)
    completes: bool = True
    #: set up before the host fails (e.g. start a skewed replica)
    prepare: t.Callable[[ChaosRun], None] | None = None


def _duration(run: ChaosRun, low: float, high: float,
              outlast: float = 0.0) -> float:
    """Seconds a fault lasts; with probability ``outlast``, long enough to
    outlast the recovery's retries (45 s)."""
    if outlast and run.rng.random() < outlast:
        return 45.0
    return run.rng.uniform(low, high)


# -- replicas --------------------------------------------------------------
def _victim(run: ChaosRun, who: str):
    if who == 'leader':
        return run.d.key_holder() or run.d.cluster.wait_leader(timeout=15)
    return run.rng.choice(run.d.standbys(run.d.key_holder()))


def kill(who: str) -> t.Callable[[ChaosRun], Injection]:
    def inject(run: ChaosRun) -> Injection:
        victim = _victim(run, who)
        victim.kill()
        return Injection(f'SIGKILL {victim.member_id} ({who})',
                         heal=lambda: None if victim.running else
                         victim.start(), heal_after=run.rng.uniform(0, 3))
    return inject


def stop(who: str) -> t.Callable[[ChaosRun], Injection]:
    def inject(run: ChaosRun) -> Injection:
        victim = _victim(run, who)
        victim.signal(signal.SIGSTOP)
        pause = _duration(run, 0.5, 2.5 * LEASE_TTL)
        return Injection(f'SIGSTOP {victim.member_id} ({who}) for '
                         f'{pause:.1f} s',
                         heal=lambda: victim.signal(signal.SIGCONT),
                         heal_after=pause)
    return inject


# -- etcd ------------------------------------------------------------------
def cut_leader_from_etcd(run: ChaosRun) -> Injection:
    victim = _victim(run, 'leader')
    proxy = run.d.proxies[run.d.cluster.index(victim)]
    mode = run.rng.choice(['blackhole', 'close'])
    proxy.set_mode(mode)
    cut = _duration(run, 1.0, 3 * LEASE_TTL)
    return Injection(f'{victim.member_id} cut from etcd ({mode}) for '
                     f'{cut:.1f} s', heal=proxy.forward, heal_after=cut)


def slow_etcd(run: ChaosRun) -> Injection:
    latency = run.rng.uniform(0.1, 0.7)
    for proxy in run.d.proxies.values():
        proxy.set_latency(latency)

    def heal() -> None:
        for proxy in run.d.proxies.values():
            proxy.set_latency(0)
    lasts = _duration(run, 2.0, 12.0)
    return Injection(f'etcd {latency:.2f} s slower per chunk for '
                     f'{lasts:.1f} s', heal=heal, heal_after=lasts)


def restart_etcd(run: ChaosRun) -> Injection:
    run.d.etcd.stop()
    down = _duration(run, 0.5, 2 * LEASE_TTL)
    return Injection(f'etcd stopped for {down:.1f} s, then restarted',
                     heal=run.d.etcd.start, heal_after=down)


# -- BMC, Nova, SMTP (simulator inject) ------------------------------------
def bmc(mode: str) -> t.Callable[[ChaosRun], Injection]:
    def inject(run: ChaosRun) -> Injection:
        delay = run.rng.uniform(0.5, 3.0) if mode == 'slow' else 0.0
        run.d.cloud.bmc_fault(run.host, mode, delay)
        lasts = _duration(run, 2.0, 15.0, outlast=0.15)
        return Injection(
            f'BMC of {run.host} {mode}'
            + (f' ({delay:.1f} s per request)' if delay else '')
            + f' for {lasts:.1f} s',
            heal=lambda: run.d.cloud.bmc_fault(run.host, 'none'),
            heal_after=lasts)
    return inject


def _nova(run: ChaosRun, **faults: t.Any) -> t.Callable[[], None]:
    run.d.cloud.inject(**faults)
    return lambda: run.d.cloud.inject(latency={'nova': 0},
                                      error_rate={'nova': 0})


def slow_nova(run: ChaosRun) -> Injection:
    latency = run.rng.uniform(0.3, 2.0)
    lasts = _duration(run, 3.0, 12.0)
    return Injection(f'Nova {latency:.1f} s slower for {lasts:.1f} s',
                     heal=_nova(run, latency={'nova': latency}),
                     heal_after=lasts)


def failing_nova(run: ChaosRun) -> Injection:
    rate = run.rng.uniform(0.3, 1.0)
    lasts = _duration(run, 2.0, 10.0)
    return Injection(f'Nova answers 500 to {rate:.0%} of requests for '
                     f'{lasts:.1f} s',
                     heal=_nova(run, error_rate={'nova': rate},
                                error_status=500), heal_after=lasts)


def down_cell(run: ChaosRun) -> Injection:
    """Nova cannot reach a cell: the failed host's own, or the other."""
    own = next(c for c, hosts in run.d.cells.items() if run.host in hosts)
    cell = run.rng.choice(sorted(run.d.cells))
    run.d.cloud.control('POST', f'/sim/cells/{cell}', {'down': True})
    lasts = _duration(run, 2.0, 12.0)
    whose = 'its own' if cell == own else 'another'
    return Injection(
        f'{cell} ({whose} cell) down for {lasts:.1f} s',
        heal=lambda: run.d.cloud.control('POST', f'/sim/cells/{cell}',
                                         {'down': False}),
        heal_after=lasts)


def smtp(modes: tuple[str, ...]) -> t.Callable[[ChaosRun], Injection]:
    def inject(run: ChaosRun) -> Injection:
        mode = run.rng.choice(modes)
        delay = run.rng.uniform(0.5, 3.5) if mode == 'slow' else 0.0
        run.d.cloud.control('POST', '/sim/smtp',
                            {'mode': mode, 'delay': delay})
        lasts = _duration(run, 2.0, 15.0)
        return Injection(
            f'SMTP {mode}' + (f' ({delay:.1f} s per reply)' if delay else '')
            + f' for {lasts:.1f} s',
            heal=lambda: run.d.cloud.control('POST', '/sim/smtp',
                                             {'mode': 'none'}),
            heal_after=lasts)
    return inject


# -- clocks ----------------------------------------------------------------
def skew_prepare(offset: str) -> t.Callable[[ChaosRun], None]:
    """Restart a standby with its clock ``offset``; in half the runs make
    it the leader before the host fails (it writes the records)."""
    def prepare(run: ChaosRun) -> None:
        d = run.d
        leader = d.cluster.wait_leader(timeout=30)
        skewed, other = run.rng.sample(d.standbys(leader), 2)
        d.restart(skewed, faketime_env(offset))
        skewed.wait_until_serving(30)
        run.notes['skewed'] = skewed.member_id
        if run.rng.random() < 0.5:
            _hand_over(run, leader, skewed, other, graceful=True)
            run.notes['skew'] = 'skewed replica leads, then is killed'
        else:
            run.notes['skew'] = 'skewed standby takes over'
    return prepare


def _hand_over(run: ChaosRun, leader, to, other, graceful: bool) -> None:
    """Make ``to`` the leader: ``other`` is stopped meanwhile."""
    other.signal(signal.SIGSTOP)
    try:
        if graceful:
            leader.stop()
        else:
            leader.kill()
        run.d.cluster.wait_leader(timeout=3 * LEASE_TTL + 10)
    finally:
        other.signal(signal.SIGCONT)
        if not leader.running:
            leader.start()


def skew(run: ChaosRun) -> Injection:
    d = run.d
    skewed = next(r for r in d.replicas
                  if r.member_id == run.notes['skewed'])
    leader = d.cluster.wait_leader(timeout=15)
    if leader is skewed:            # it wrote the records: kill it
        skewed.kill()
        return Injection(f'{skewed.member_id} ({skewed.env["FAKETIME"]}) '
                         'led and was killed', heal=lambda: d.restart(skewed),
                         heal_after=run.rng.uniform(0, 3))
    other = next(r for r in d.standbys(leader) if r is not skewed)
    other.signal(signal.SIGSTOP)
    graceful = run.rng.random() < 0.5
    if graceful:
        leader.signal(signal.SIGTERM)
    else:
        leader.kill()

    def then() -> None:
        try:
            d.cluster.wait_leader(timeout=3 * LEASE_TTL + 10)
        finally:
            other.signal(signal.SIGCONT)
            leader.stop()
            leader.start()
    return Injection(f'{leader.member_id} '
                     f'{"stopped" if graceful else "killed"}: '
                     f'{skewed.member_id} ({skewed.env["FAKETIME"]}) takes '
                     'over', then=then, heal=lambda: d.restart(skewed),
                     heal_after=None)


# -- hosts -----------------------------------------------------------------
def reserve_host(run: ChaosRun) -> None:
    """Choose the second host before the first fails (no time lost)."""
    run.spare = run.pick_host()


def second_host(run: ChaosRun) -> Injection:
    other = run.spare
    mode = run.fail(other)
    return Injection(f'{other} failed too ({mode})', extra_hosts=(other,),
                     then=lambda: run.note_failed(other))


def host_back(run: ChaosRun) -> Injection:
    run.d.cloud.control('POST', f'/sim/hosts/{run.host}/recover',
                        {'wait': False})
    return Injection(f'{run.host} came back', then=run.note_host_back,
                     host_back=True)


KINDS: dict[str, FaultKind] = {k.name: k for k in (
    FaultKind('leader-kill', kill('leader'), (DETECTING,) + STEPS),
    FaultKind('standby-kill', kill('standby')),
    FaultKind('leader-stop', stop('leader'), (DETECTING,) + STEPS),
    FaultKind('standby-stop', stop('standby')),
    FaultKind('leader-etcd-cut', cut_leader_from_etcd,
              (DETECTING,) + STEPS),
    FaultKind('etcd-slow', slow_etcd),
    FaultKind('etcd-restart', restart_etcd, (DETECTING,) + STEPS),
    FaultKind('bmc-slow', bmc('slow'), FENCE_STEPS),
    FaultKind('bmc-unreachable', bmc('unreachable'), FENCE_STEPS),
    FaultKind('bmc-stuck', bmc('stuck'), FENCE_STEPS),
    FaultKind('bmc-wrong-password', bmc('wrong-password'), FENCE_STEPS),
    FaultKind('nova-slow', slow_nova, completes=False),
    FaultKind('nova-500', failing_nova, (DETECTING,) + STEPS,
              completes=False),
    FaultKind('down-cell', down_cell, (DETECTING,) + STEPS,
              completes=False),
    FaultKind('smtp-slow', smtp(('slow',)), MAIL_STEPS),
    FaultKind('smtp-refuse', smtp(('refuse', 'reject')), MAIL_STEPS),
    FaultKind('clock-ahead', skew, (DETECTING,) + STEPS,
              prepare=skew_prepare('+30s')),
    FaultKind('clock-behind', skew, (DETECTING,) + STEPS,
              prepare=skew_prepare('-30s')),
    FaultKind('two-hosts', second_host, (DETECTING,) + STEPS,
              prepare=reserve_host),
    FaultKind('host-back', host_back, (DETECTING,) + STEPS),
)}
