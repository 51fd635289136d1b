"""The leader loop: one cycle observes, decides and dispatches.

Each cycle starts from a fresh look (monitor, live records, operator
requests), asks the gates what may start, checkpoints new recoveries and
makes sure every live recovery has a runner thread. It returns one sentence
that says what it saw and did; long work happens in the runners, so a cycle
stays short.
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
from freezer_dr.engine import drivers as engine_drivers
from freezer_dr.engine import gates
from freezer_dr.engine import operator_requests
from freezer_dr.engine.model import InstanceState
from freezer_dr.engine.model import RecoveryRecord
from freezer_dr.engine.model import Step
from freezer_dr.engine.model import now
from freezer_dr.engine.notify import Notification
from freezer_dr.engine.recovery import RecoveryContext
from freezer_dr.engine.recovery import RecoveryRunner
from freezer_dr.engine.settings import LoopSettings
from freezer_dr.engine.settings import settings_from_conf

LOG = logging.getLogger(__name__)

STATE_KEY = 'state'              # suspects and episode start times
#: gate decisions of the last cycle, as gauges
GAUGES = {
    'hosts_observed': 'Compute hosts the monitor reported.',
    'hosts_suspected': 'Hosts seen down, inside their confirmation window.',
    'recoveries_live': 'Live (unfinished) recoveries.',
    'storm': '1 while the storm guard holds every failed host.',
    'blind': '1 while the monitor is unavailable (fail closed).',
    'paused': '1 while an operator paused the cluster.',
}
#: consecutive errors of one step before the recovery is failed (with
#: the backoff below, about five minutes of a cloud that keeps failing)
MAX_STEP_ERRORS = 6
#: seconds before a runner that hit an error is started again (doubling)
ERROR_RETRY = 5.0
ERROR_RETRY_MAX = 120.0


class LeaderLoop:
    """Runs one leader cycle at a time and says what it did."""

    def __init__(self, lease, store, settings: LoopSettings,
                 load_drivers: t.Callable[[], engine_drivers.Drivers],
                 metrics=None) -> None:
        self.lease = lease
        self.store = store
        self.settings = settings
        self._load_drivers = load_drivers
        self._drivers: engine_drivers.Drivers | None = None
        self._term = threading.Event()
        self._runners: dict[str, threading.Thread] = {}
        self._errors: dict[str, tuple[str, int, float]] = {}
        self._hold: str | None = 'no look yet'
        self._owned: set[str] = set()
        self._observed: dict = {}
        self._blind_since: float | None = None    # monotonic
        self.metrics = metrics or metrics_module.Registry()
        self.last_live: dict[str, RecoveryRecord] = {}
        self.last_suspects: dict[str, float] = {}
        self._gauges = {name: self.metrics.gauge(f'freezer_dr_{name}', text)
                        for name, text in GAUGES.items()}
        self._opened = self.metrics.counter(
            'freezer_dr_recoveries_opened_total',
            'Recoveries this replica opened as leader.')
        self._finished = self.metrics.counter(
            'freezer_dr_recoveries_finished_total',
            'Recoveries this replica finished as leader, by step.')

    # -- public ----------------------------------------------------------
    def stop(self) -> None:
        """Cancel in-flight work before its next side effect."""
        self._term.set()

    @property
    def hold_reason(self) -> str | None:
        """Why no new fencing may start now (None: the gates are open)."""
        return self._hold

    def blind_for(self) -> float:
        """Seconds this leader has been unable to see the cloud (0: sees)."""
        since = self._blind_since
        return 0.0 if since is None else max(0.0, time.monotonic() - since)

    def running(self) -> bool:
        """Whether any recovery runner thread is alive."""
        return any(t.is_alive() for t in self._runners.values())

    def busy(self) -> bool:
        """Anything suspected, live or running (for one-shot mode)."""
        return bool(self.last_suspects or self.last_live or self.running())

    def run_cycle(self) -> str:
        """One cycle; returns the sentence that describes it."""
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
            if self._blind_since is None:
                self._blind_since = time.monotonic()
            return f'cannot observe: {err}; taking no action'
        try:
            return self._cycle(drivers)
        except exceptions.StaleRecord as error:   # not a lost lease
            return f'{error}; reading afresh next cycle'


    # -- the cycle -------------------------------------------------------
    def _cycle(self, drivers: engine_drivers.Drivers) -> str:
        # Hosts whose runner was alive before the records were read: their
        # copy may be stale by the time we would use it, so this cycle
        # leaves them alone (a runner owns its record while it runs).
        self._owned = {h for h, th in self._runners.items() if th.is_alive()}
        unreadable: dict[str, str] = {}
        live = {r.host: r for r in self.store.recoveries(unreadable)}
        operator_requests.handle(self.store, live, self._owned)
        state = self.store.get(STATE_KEY) or {}
        paused = self.store.paused()
        try:
            observations = drivers.monitor.hosts()
        except exceptions.MonitorUnavailable as error:
            return self._blind(state, live, error)
        self._observed = {o.host: o for o in observations}
        self._blind_since = None
        known = state.get('suspects', {})
        if state.get('blind_since'):     # sight is back: windows restart
            known = {}
        # a host whose record cannot be read is held: never a second
        # recovery beside one we cannot see
        suspects = gates.track_suspects(observations, known,
                                        set(live) | set(unreadable), now())
        active = sum(1 for r in live.values()
                     if r.step not in (Step.CONFIRMED.value, Step.HELD.value))
        decision = gates.decide(
            observations, suspects, set(live), active, now(),
            self.settings.confirm_window, self.settings.storm,
            self.settings.max_parallel_hosts)
        sentences = list(decision.sentences)
        new_state = {'suspects': suspects,
                     'storm_since': (state.get('storm_since') or now()
                                     if decision.storm else None),
                     'blind_since': None}
        if new_state != state:
            self.store.put_fenced(STATE_KEY, new_state)
        if decision.storm:
            self._alert_storm(new_state['storm_since'], sentences[0],
                              suspects)
        self._hold = ('paused' if paused else
                      'storm guard' if decision.storm else None)
        if paused:
            sentences = [f'paused by {paused.get("by")} '
                         f'({paused.get("reason")}): no new recoveries']
        else:
            for host in decision.start:
                obs = next(o for o in observations if o.host == host)
                live[host] = self._open(host, suspects.pop(host), obs)
            if decision.start:
                self.store.put_fenced(STATE_KEY, dict(new_state,
                                                      suspects=suspects))
        self.last_live, self.last_suspects = live, suspects
        self._measure(observed=len(observations), suspected=len(suspects),
                      live=len(live), storm=decision.storm,
                      paused=bool(paused), blind=False)
        sentences += self._dispatch(drivers, live)
        for host, error in sorted(unreadable.items()):
            LOG.error('recovery record of %s unreadable: %s', host, error)
            sentences.append(f'host {host} held: its recovery record is '
                             f'unreadable ({error})')
        if not sentences:
            sentences.append(self._all_well(observations))
        return '; '.join(sentences)

    def _blind(self, state: dict, live: dict, error: Exception) -> str:
        self._hold = 'monitor unavailable'
        if self._blind_since is None:
            self._blind_since = time.monotonic()
        since = state.get('blind_since') or now()
        if not state.get('blind_since'):
            self.store.put_fenced(STATE_KEY, dict(state, blind_since=since))
        elif now() - since >= self.settings.confirm_window:
            self._notification().cluster_alert(
                self.store, self.lease,
                self.settings.recovery.notify_call_time, 'blind',
                f'{since:.0f}', f'monitor unavailable since '
                f'{time.ctime(since)}: {error}')
        self.last_live = live
        self._gauges['blind'].set(1)
        extra = self._dispatch(self._drivers, live) if live else []
        return '; '.join([f'blind: monitor unavailable ({error}): '
                          f'no new fencing'] + extra)

    def _alert_storm(self, since: float, sentence: str,
                     suspects: dict[str, float]) -> None:
        self._notification().cluster_alert(
            self.store, self.lease, self.settings.recovery.notify_call_time,
            'storm', f'{since:.0f}', sentence,
            {'hosts': sorted(suspects)})

    def _open(self, host: str, first_seen: float, obs) -> RecoveryRecord:
        record = RecoveryRecord(
            id=f'{host}-{time.strftime("%Y%m%dT%H%M%S")}-'
               f'{uuid.uuid4().hex[:6]}',
            host=host,
            evidence={'first_seen_down': first_seen, 'confirmed_at': now(),
                      'observation': dataclasses.asdict(obs)})
        record.steps.append({'step': Step.CONFIRMED.value, 'at': now(),
                             'note': 'confirmed down'})
        self.store.put_recovery(record)
        self._opened.inc()
        LOG.info('recovery %s of host %s opened', record.id, host)
        return record


    # -- runners ---------------------------------------------------------
    def _dispatch(self, drivers, live: dict[str, RecoveryRecord]) -> list:
        sentences = []
        for host, record in sorted(live.items()):
            running = self._runners.get(host)
            if host not in self._owned and self._due(record) and not (
                    running and running.is_alive()):
                fresh = self.store.get_recovery(host)   # never a stale copy
                if fresh is not None and fresh.id == record.id:
                    self._start_runner(drivers, fresh)
            sentences.append(self._describe(record))
        return sentences

    def _due(self, record: RecoveryRecord) -> bool:
        if record.step == Step.HELD.value and \
                record.next_attempt_at > now():
            return False
        error = self._errors.get(record.host)
        return error is None or error[2] <= now()

    def _start_runner(self, drivers, record: RecoveryRecord) -> None:
        ctx = RecoveryContext(
            store=self.store, lease=self.lease, evacuator=drivers.evacuator,
            fencers=drivers.fencers, notification=self._notification(),
            settings=self.settings.recovery, hold_reason=lambda: self._hold,
            stop=self._term, host_down=self._host_down)
        runner = RecoveryRunner(ctx, record)
        thread = threading.Thread(target=self._run, args=(runner,),
                                  name=f'recovery-{record.host}',
                                  daemon=True)
        self._runners[record.host] = thread
        thread.start()

    def _run(self, runner: RecoveryRunner) -> None:
        record = runner.record
        try:
            runner.run()
            self._errors.pop(record.host, None)
            if record.terminal:
                self._finished.inc(labels={'step': record.step})
        except exceptions.LeadershipLost as error:
            LOG.warning('recovery %s of host %s stopped: %s', record.id,
                        record.host, error)
        except (exceptions.CloudUnavailable, exceptions.StoreUnavailable,
                exceptions.EvacuationFailed, exceptions.NotifyFailed) as error:
            self._step_error(runner, error)
        except Exception as error:   # a bug: say so loudly, keep the host
            LOG.exception('recovery %s of host %s: unexpected error',
                          record.id, record.host)
            self._step_error(runner, error)

    def _step_error(self, runner: RecoveryRunner, error: Exception) -> None:
        record = runner.record
        if runner.ctx.stop.is_set():
            return                   # its term is over: not ours to judge
        step, count, _ = self._errors.get(record.host, (record.step, 0, 0))
        count = count + 1 if step == record.step else 1
        LOG.error('recovery %s of host %s: step %s failed (%d of %d): %s',
                  record.id, record.host, record.step, count,
                  MAX_STEP_ERRORS, error)
        self._errors[record.host] = (record.step, count, now() + gates.backoff(
            count, ERROR_RETRY, ERROR_RETRY_MAX))
        if count < MAX_STEP_ERRORS or record.step in (
                Step.CONFIRMED.value, Step.HELD.value, Step.FENCING.value):
            return
        try:    # give up on this step: end the recovery, tell people
            if record.step == Step.NOTIFYING.value:
                final = Step.FAILED if record.failed_step else Step.DONE
                runner.transition(final, f'notifications not delivered: '
                                  f'{error}', finished_at=now(),
                                  reason=f'{record.reason}; notifications '
                                         f'not delivered: {error}')
            else:
                failed_step = record.step
                runner.transition(Step.NOTIFYING, f'{failed_step}: {error}',
                                  failed_step=failed_step,
                                  reason=f'{failed_step} failed: {error}')
            runner.run()
            self._errors.pop(record.host, None)
        except exceptions.FreezerDRError as again:
            LOG.error('recovery %s: could not record failure: %s',
                      record.id, again)

    def _describe(self, record: RecoveryRecord) -> str:
        step = record.step
        if step == Step.EVACUATING.value:
            total = sum(1 for i in record.instances
                        if i.state != InstanceState.SKIPPED.value)
            done = sum(1 for i in record.instances
                       if i.state == InstanceState.DONE.value)
            return f'recovering {record.host}: evacuating {done}/{total}'
        if step == Step.HELD.value:
            return f'host {record.host} held: {record.reason}'
        return f'recovering {record.host}: {step}'

    def _all_well(self, observations) -> str:
        out = [o.host for o in observations if not gates.in_service(o)]
        text = f'all {len(observations) - len(out)} hosts in service up'
        return text + (f' ({len(out)} out of service)' if out else '')

    # -- helpers ---------------------------------------------------------
    def _measure(self, observed: int, suspected: int, live: int,
                 storm: bool, paused: bool, blind: bool) -> None:
        values = {'hosts_observed': observed, 'hosts_suspected': suspected,
                  'recoveries_live': live, 'storm': int(storm),
                  'paused': int(paused), 'blind': int(blind)}
        for name, value in values.items():
            self._gauges[name].set(value)

    def _load(self) -> engine_drivers.Drivers:
        self._drivers = self._load_drivers()
        return self._drivers

    def _notification(self) -> Notification:
        return Notification(self._drivers.notifiers if self._drivers else {},
                            self.settings.notify_attempts, self._term)

    def _new_term(self) -> None:
        """After a lost lease: a new stop event, and no second runner.

        Runners of the old term stop at their next step (their stop event
        is set, so they can neither act nor write); until their threads
        end they stay in ``_runners``, so no second runner starts for
        their host and ``running()`` still counts them.
        """
        self._runners = {h: th for h, th in self._runners.items()
                         if th.is_alive()}
        self._errors = {}
        self._term = threading.Event()

    def _host_down(self, host: str) -> bool | None:
        obs = self._observed.get(host)
        if obs is None:
            return None
        return obs.is_down or not gates.in_service(obs)


def build(conf, lease, store, metrics=None) -> LeaderLoop:
    """The leader loop for this configuration."""
    def confirmation(host: str) -> float | None:
        """When an operator confirmed ``host`` off for its live recovery."""
        request = store.requests('fence-confirmed').get(host)
        record = store.get_recovery(host)
        if not (request and record):
            return None
        valid_from = max(record.created_at, record.reopened_at or 0.0)
        return request['at'] if request.get('at', 0) >= valid_from else None

    return LeaderLoop(lease, store, settings_from_conf(conf),
                      lambda: engine_drivers.load(conf, confirmation),
                      metrics=metrics)
