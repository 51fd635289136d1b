"""The leader loop: one cycle observes, decides and dispatches.

Each cycle starts from a fresh look (monitor, live records, operator
requests), asks the gates what may start, checkpoints new recoveries and
makes sure every live recovery has a runner (``engine/runners.py``). It
returns one sentence that says what it saw and did. Anything unexpected
fails the cycle *closed* (no new fencing, counted, admins alerted) and the
process goes on: bad data from a cloud API never takes the cluster down.
"""
from __future__ import annotations

import dataclasses
import threading
import time
import typing as t
import uuid

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr import metrics as metrics_module
from freezer_dr.engine import alerts
from freezer_dr.engine import drivers as engine_drivers
from freezer_dr.engine import gates
from freezer_dr.engine import leader_state
from freezer_dr.engine import observe
from freezer_dr.engine import operator_requests
from freezer_dr.engine import preflight
from freezer_dr.engine import sentences
from freezer_dr.engine.notify import Notification
from freezer_dr.engine.preflight import FencingReadiness
from freezer_dr.engine.recovery_context import RecoveryContext
from freezer_dr.engine.runners import RunnerPool
from freezer_dr.engine.settings import LoopSettings
from freezer_dr.engine.settings import settings_from_conf
from freezer_dr.ha import store as ha_store
from freezer_dr.model import HostObservation
from freezer_dr.model import RecoveryRecord
from freezer_dr.model import Step
from freezer_dr.model import now

LOG = logging.getLogger(__name__)

#: gate decisions of the last cycle, as gauges
GAUGES = {
    'hosts_observed': 'Compute hosts the monitor reported.',
    'hosts_suspected': 'Hosts seen down, inside their confirmation window.',
    'hosts_unknown': 'Hosts whose state the monitor could not read.',
    'recoveries_live': 'Live (unfinished) recoveries.',
    'storm': '1 while the storm guard holds every failed host.',
    'blind': '1 while the monitor is unavailable (fail closed).',
    'paused': '1 while an operator paused the cluster.',
}


class LeaderLoop:
    """Runs one leader cycle at a time and says what it did."""

    def __init__(self, lease, store, settings: LoopSettings,
                 load_drivers: t.Callable[[], engine_drivers.Drivers],
                 metrics=None,
                 load_notifiers: t.Callable[[], dict] | None = None) -> None:
        self.lease = lease
        self.store = store
        self.settings = settings
        self._load_drivers = load_drivers
        self._load_notifiers = load_notifiers
        self._drivers: engine_drivers.Drivers | None = None
        self._term = threading.Event()
        self._hold: str | None = 'no look yet'
        self._unknown: dict[str, str] = {}       # host -> why
        self._observed: dict[str, HostObservation] = {}
        self._looked: dict[str, float] = {}      # host -> monotonic
        self._blind_since: float | None = None   # monotonic
        self.metrics = metrics or metrics_module.Registry()
        self.last_live: dict[str, RecoveryRecord] = {}
        #: host -> operator confirmation in use by its fencing attempt
        self.confirmations: dict[str, float] = {}
        self.last_suspects: dict[str, dict] = {}
        self._gauges = {name: self.metrics.gauge(f'freezer_dr_{name}', text)
                        for name, text in GAUGES.items()}
        self._opened = self.metrics.counter(
            'freezer_dr_recoveries_opened_total',
            'Recoveries this replica opened as leader.')
        finished = self.metrics.counter(
            'freezer_dr_recoveries_finished_total',
            'Recoveries this replica finished as leader, by step.',
            labels=('step',))
        self._cycle_errors = self.metrics.counter(
            'freezer_dr_cycle_errors_total',
            'Leader cycles that failed closed on an unexpected error.')
        self._term_started = now()
        self.alerts = self._new_alerts()
        self._failing_since: float | None = None
        self.pool = RunnerPool(
            lambda record: finished.labels(step=record.step.value).inc())
        self.watch = observe.HostWatch(observe.WatchSettings(
            settings.storm, settings.confirm_window, settings.observe_gap,
            settings.heartbeats, settings.readiness.read_timeout))
        self.readiness = FencingReadiness(
            settings.readiness, store, lease,
            lambda *alert: self.alerts.send(*alert),
            self.metrics.gauge('freezer_dr_fencing_ready',
                               '1 while every fencing level of the host '
                               'answered its last readiness check.',
                               labels=('host',)))

    # -- public ----------------------------------------------------------
    def stop(self) -> None:
        """Cancel in-flight work before its next side effect."""
        self._term.set()

    @property
    def hold_reason(self) -> str | None:
        """Why no new fencing may start now (None: the gates are open)."""
        return self._hold

    def host_hold(self, host: str) -> str | None:
        """Why no fencing of ``host`` may start now, or None."""
        if self._hold:
            return self._hold
        if host in self._unknown:
            return f'host state unknown ({self._unknown[host]})'
        return None

    def pause_after(self, started: float, interval: float) -> float:
        """Seconds from now to the next cycle (see observe.pause)."""
        return observe.pause(started, interval, self.watch.next_due)

    def blind_for(self) -> float:
        """Seconds this leader has been unable to see the cloud (0: sees)."""
        since = self._blind_since
        return 0.0 if since is None else max(0.0, time.monotonic() - since)

    def running(self) -> bool:
        """Whether any recovery runner thread is alive."""
        return self.pool.running()

    def busy(self) -> bool:
        """Anything suspected, live or running (for one-shot mode)."""
        return bool(self.last_suspects or self.last_live or self.running())

    def run_cycle(self) -> str:
        """One cycle; returns the sentence that describes it.

        Raises only LeadershipLost and StoreUnavailable (the caller's
        business); any other error fails the cycle closed.
        """
        if self._term.is_set():
            self._new_term()
        try:
            self.lease.ensure(need=0)
        except exceptions.LeadershipLost:
            return 'not the leader: taking no action'
        try:
            drivers = self._drivers or self._load()
        except (exceptions.ConfigError, exceptions.CloudUnavailable) as err:
            self._hold = 'cannot observe'
            self._went_blind()
            if self.blind_for() >= self.settings.confirm_window:
                self.alerts.cannot_observe(err, f'{self._term_started:.0f}')
            return f'cannot observe: {err}; taking no action'
        try:
            return self._cycle(drivers)
        except exceptions.StaleRecord as error:   # not a lost lease
            return f'{error}; reading afresh next cycle'
        except ha_store.StoreValueError as error:  # bad data, not an outage
            return self._cycle_failed(error)
        except (exceptions.LeadershipLost, exceptions.StoreUnavailable):
            raise
        except Exception as error:
            return self._cycle_failed(error)

    # -- the cycle -------------------------------------------------------
    def _cycle(self, drivers: engine_drivers.Drivers) -> str:
        # Hosts whose runner is alive own their record: their copy may be
        # newer than what we read now, so this cycle leaves them alone.
        owned = self.pool.owned()
        unreadable: dict[str, str] = {}
        live = {r.host: r for r in self.store.recoveries(unreadable)}
        for kind, said in operator_requests.handle(self.store, live, owned):
            self.alerts.submit(kind, alerts.episode_of(said), said)
        state, paused = leader_state.read(self.store, self.alerts)
        try:
            look = self.watch.look(
                drivers.monitor, state.get('hosts_seen') or 0,
                drivers.fencers,
                lambda host: preflight.vouched(self.store, host))
        except exceptions.MonitorUnavailable as error:
            return self._blind(state, live, error)
        self._blind_since = self._failing_since = None
        observations, unknown = look.hosts, look.unknown
        self._observed = {o.host: o for o in observations}
        stop = self._term
        self.readiness.ensure_running(
            drivers, stop, lambda host: self.watch.alive_after(
                host, self._observed.get(host), stop))
        # after blindness every window restarts: nobody watched
        previous = {} if state.get('blind_since') else \
            state.get('suspects', {})
        suspects, self._looked = gates.track_suspects(
            observations, previous, set(live) | set(unreadable),
            self._looked, time.monotonic(), now(),
            self.settings.observe_gap)
        early = look.off & set(suspects)
        for host in early:          # a BMC reading OFF settles it
            suspects[host] = dict(suspects[host], bmc_off=True, watched=max(
                suspects[host]['watched'], self.settings.confirm_window))
        active = sum(1 for r in live.values()
                     if r.step not in (Step.CONFIRMED, Step.HELD))
        window = self.settings.storm_window
        recent = gates.within(state.get('recent'), window, now())
        held = gates.within(state.get('storm_held'), window, now())
        decision = gates.with_storm_memory(
            lambda counted: gates.decide(
                observations, suspects, set(live), active,
                self.settings.confirm_window, self.settings.storm,
                self.settings.max_parallel_hosts,
                counted - set(live) - set(suspects)),
            recent, held, suspects, now())
        # hold first, alert after: a slow alert never opens a gate
        self._unknown = unknown
        self._hold = ('paused' if paused else
                      'storm guard' if decision.storm else None)
        known_unknown, stamp = state.get('unknown') or {}, now()
        new_state = {
            'suspects': suspects,
            'storm_since': (state.get('storm_since') or now()
                            if decision.storm else None),
            'blind_since': None,
            'unknown': {h: known_unknown.get(h, stamp) for h in unknown},
            'hosts_seen': len(observations), 'recent': recent,
            'storm_held': held}
        if new_state != state:
            self.store.put_fenced(leader_state.KEY, new_state)
        said = [f'host {h} read OFF by its BMC: no confirmation window '
                'needed' for h in sorted(early)]
        said += list(decision.sentences)
        if decision.storm:
            self.alerts.submit('storm', f'{new_state["storm_since"]:.0f}',
                                decision.sentences[0],
                                {'hosts': sorted(suspects)})
        self.alerts.hosts_unknown(new_state['unknown'], unknown)
        if paused:
            said = [f'paused by {paused.get("by")} '
                         f'({paused.get("reason")}): no new recoveries']
        elif decision.start:
            for host in decision.start:
                live[host] = self._open(host, suspects.pop(host),
                                        self._observed[host])
                recent[host] = now()
            self.store.put_fenced(leader_state.KEY, dict(
                new_state, suspects=suspects, recent=recent))
        self.last_live, self.last_suspects = live, suspects
        self._measure(hosts_observed=len(observations),
                      hosts_suspected=len(suspects),
                      hosts_unknown=len(unknown), recoveries_live=len(live),
                      storm=decision.storm, paused=bool(paused), blind=False)
        said += self._dispatch(drivers, live)
        if unknown:
            said.append(sentences.unknown_hosts(unknown))
        said += self._unreadable(unreadable)
        if not said:
            said.append(sentences.all_well(observations))
        return '; '.join(said)

    def _blind(self, state: dict, live: dict, error: Exception) -> str:
        self._hold = 'monitor unavailable'
        if not getattr(error, 'judged', False):
            self._went_blind()       # a replica that sees may do better
        since = state.get('blind_since') or now()
        if not state.get('blind_since'):
            self.store.put_fenced(leader_state.KEY,
                                  dict(state, blind_since=since))
        elif now() - since >= self.settings.confirm_window:
            self.alerts.submit('blind', f'{since:.0f}',
                                f'monitor unavailable since '
                                f'{time.ctime(since)}: {error}')
        self.last_live = live
        self._gauges['blind'].set(1)
        extra = self._dispatch(self._drivers, live) if live else []
        return '; '.join([f'blind: monitor unavailable ({error}): '
                          f'no new fencing'] + extra)

    def _cycle_failed(self, error: Exception) -> str:
        """Fail closed: no new fencing, counted, admins alerted."""
        LOG.exception('leader cycle failed closed')
        self._hold = 'cycle failed'
        self._cycle_errors.inc()
        if self._failing_since is None:
            self._failing_since = now()
        sentence = (f'cycle failed closed ({type(error).__name__}: {error}): '
                    f'no new fencing')
        self.alerts.submit('cycle_error', f'{type(error).__name__}:'
                            f'{self._failing_since:.0f}', sentence)
        return sentence

    def _open(self, host: str, watch: dict, obs) -> RecoveryRecord:
        record = RecoveryRecord(
            id=f'{host}-{time.strftime("%Y%m%dT%H%M%S")}-'
               f'{uuid.uuid4().hex[:6]}',
            host=host,
            evidence={'watched_down': round(watch['watched'], 3),
                      'confirmed_at': now(),
                      'observation': dataclasses.asdict(obs)})
        record.steps.append({'step': Step.CONFIRMED.value, 'at': now(),
                             'note': 'confirmed down'})
        self.store.put_recovery(record)
        self._opened.inc()
        LOG.info('recovery %s of host %s opened', record.id, host)
        return record

    # -- alerts ----------------------------------------------------------
    def _unreadable(self, unreadable: dict[str, str]) -> list[str]:
        said = []
        for host, error in sorted(unreadable.items()):
            LOG.error('recovery record of %s unreadable: %s', host, error)
            self.alerts.record_unreadable(host, error)
            said.append(f'host {host} held: its recovery record is '
                        f'unreadable ({error})')
        return said

    def _dispatch(self, drivers, live: dict[str, RecoveryRecord]) -> list:
        said = []
        for host, record in sorted(live.items()):
            if self.pool.due(record):
                fresh = self.store.get_recovery(host)   # never a stale copy
                if fresh is not None and fresh.id == record.id:
                    self.pool.start(self._context(drivers), fresh)
            said.append(sentences.describe(record))
        return said

    def _context(self, drivers) -> RecoveryContext:
        return RecoveryContext(
            store=self.store, lease=self.lease, evacuator=drivers.evacuator,
            fencers=drivers.fencers, notification=self._notification(),
            settings=self.settings.recovery, hold_reason=self.host_hold,
            stop=self._term, host_down=self._host_down,
            confirmations=self.confirmations,
            power_on_since=lambda host, revision: preflight.power_on_since(
                self.store, host, revision),
            distrusted=lambda host: preflight.distrusted(self.store, host))

    def _measure(self, **values: int | bool) -> None:
        for name, value in values.items():
            self._gauges[name].set(int(value))

    def _load(self) -> engine_drivers.Drivers:
        self._drivers = self._load_drivers()
        self.alerts.inventory_broken(
            getattr(self._drivers.inventory, 'broken', {}))
        return self._drivers

    def _notification(self) -> Notification:
        return Notification(self._drivers.notifiers if self._drivers else {},
                            self.settings.notify_attempts, self._term)

    def _went_blind(self) -> None:
        if self._blind_since is None:
            self._blind_since = time.monotonic()

    def _new_term(self) -> None:
        """After a lost lease: a new stop event, and no second runner."""
        self.pool.new_term()
        self.watch.new_term()
        self._looked = {}
        self._term = threading.Event()
        self._term_started = now()
        self.alerts = self._new_alerts()

    def _new_alerts(self) -> alerts.AdminAlerts:
        """This term's admin alerts (sent in the background)."""
        return alerts.AdminAlerts.for_term(
            lambda notifiers: Notification(
                notifiers, self.settings.notify_attempts, self._term),
            self.store, self.lease, self.settings.recovery.notify_call_time,
            self._term, lambda: (self._drivers.notifiers if self._drivers
                                 else {}), self._load_notifiers)

    def _host_down(self, host: str) -> bool | None:
        obs = self._observed.get(host)
        if obs is None or obs.is_unknown:
            return None
        return obs.is_down or not gates.in_service(obs)


def build(conf, lease, store, metrics=None) -> LeaderLoop:
    """The leader loop for this configuration."""
    confirmations: dict[str, float] = {}
    loop = LeaderLoop(
        lease, store, settings_from_conf(conf),
        lambda: engine_drivers.load(conf, confirmations.get),
        metrics=metrics,
        load_notifiers=lambda: engine_drivers.load_notifiers(conf))
    loop.confirmations = confirmations     # what the manual levels read
    return loop
