"""One freezer-dr replica: membership, leader campaign, leader loop, HTTP.

Threads: the *campaign* thread keeps the replica in the race for the lease
(standbys look at the leader key every ``[coordination] poll_interval`` and
on every delete event of the key); while this replica leads, a *leader*
thread runs one engine cycle every ``[engine] poll_interval``. Losing the
lease stops the leader thread at once. The main thread only waits for
SIGTERM/SIGINT, then hands leadership over cleanly.
"""
from __future__ import annotations

import signal
import threading
import time
import typing as t

from oslo_config import cfg
from oslo_log import log as logging

from freezer_dr import api
from freezer_dr import blind
from freezer_dr import config
from freezer_dr import exceptions
from freezer_dr import metrics
from freezer_dr import sight as cloud_sight
from freezer_dr import systemd
from freezer_dr.engine import loop as engine_loop
from freezer_dr.ha import leader_watch
from freezer_dr.ha import leadership
from freezer_dr.ha import members as ha_members

LOG = logging.getLogger(__name__)

#: How long shutdown waits for the leader thread's current cycle to stop.
STOP_GRACE = 5.0


class Replica:
    """A replica of the freezer-dr service, built from its configuration."""

    def __init__(self, conf: cfg.ConfigOpts, keepalive_interval: float,
                 registry: metrics.Registry | None = None) -> None:
        coord = conf.coordination
        self.conf = conf
        self.member_id = config.member_id(conf)
        self.registry = registry or metrics.Registry()
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._term_over = threading.Event()
        self._lock = threading.Lock()
        self._fatal: BaseException | None = None
        self._loop: t.Any = None
        self._leader_thread: threading.Thread | None = None
        self._campaign_thread: threading.Thread | None = None
        self._campaign_progress = time.monotonic()
        self._cycle_started: float | None = None
        self._joined = False
        self._etcd_error: str | None = None

        self.api: api.ApiServer | None = None
        if conf.api.enabled:
            self.api = api.ApiServer(conf.api.bind_host, conf.api.bind_port,
                                     self, self.registry)
        info: dict[str, t.Any] = {}
        if self.api is not None:
            host, port = self.api.address
            info['api'] = f'{host}:{port}'
        parts = leadership.from_config(conf, self.member_id,
                                       keepalive_interval, info)
        self.client, self.lease, self.store = \
            parts.client, parts.lease, parts.store
        self.membership = ha_members.Membership(
            coord.backend_url, coord.cluster, self.member_id,
            {'role': 'standby', **info},
            coord.membership_timeout, coord.http_timeout)
        self.watch = leader_watch.LeaderKeyWatch.for_client(
            self.client, self.lease.leader_key, self._wake.set,
            connect_timeout=coord.http_timeout,
            idle=max(10.0, 3 * coord.lease_ttl))
        self.lease.add_listener(self._on_leadership)
        interval = cloud_sight.look_interval(conf.engine.blind_handover_after)
        self.sight = cloud_sight.CloudSight(
            cloud_sight.connector(conf, interval), interval,
            self._publish_sight)
        self.blindness = blind.BlindnessPolicy(
            self.member_id, self.sight, self.membership, self.lease,
            conf.engine.blind_handover_after,
            defer_limit=2 * coord.lease_ttl)
        self.notifier = systemd.Notifier()
        self.watchdog = systemd.Watchdog(self.notifier, self.health)
        self._register_metrics()

    # -- metrics and the HTTP view ----------------------------------------

    def _register_metrics(self) -> None:
        reg = self.registry
        reg.gauge('freezer_dr_up', 'The replica process is running.').set(1)
        reg.gauge('freezer_dr_leader',
                  '1 while this replica holds a valid leader lease.',
                  lambda: 1.0 if self._is_leader() else 0.0)
        reg.gauge('freezer_dr_epoch',
                  'Epoch (fencing token) of this replica\'s lease, 0 if '
                  'none.', lambda: float(self.lease.epoch or 0))
        reg.gauge('freezer_dr_lease_remaining_seconds',
                  'Seconds left on this replica\'s lease by its own '
                  'deadline.', self.lease.remaining)
        self._cycles = reg.counter('freezer_dr_cycles_total',
                                   'Leader loop cycles run.')
        self._last_cycle = reg.gauge('freezer_dr_last_cycle_seconds',
                                     'Duration of the last leader cycle.')
        self._transitions = reg.counter(
            'freezer_dr_leadership_changes_total',
            'Times this replica gained or lost leadership.')
        self._etcd_errors = reg.counter(
            'freezer_dr_etcd_errors_total',
            'etcd requests of the campaign that failed.')

    def _is_leader(self) -> bool:
        return not self._stopping.is_set() and self.lease.is_leader

    def leader_status(self) -> dict[str, t.Any]:
        """The ``/leader`` body (see :class:`freezer_dr.api.ReplicaState`)."""
        leading = self._is_leader()
        return {
            'member_id': self.member_id,
            'leader': leading,
            'epoch': self.lease.epoch,
            'lease_remaining': round(self.lease.remaining(), 3),
        }

    def health(self) -> tuple[bool, str]:
        """Healthy while the campaign (and, leading, the loop) progress."""
        coord = self.conf.coordination
        now = time.monotonic()
        thread = self._campaign_thread
        if thread is None or not thread.is_alive():
            return False, 'campaign thread is not running'
        # a step may try every etcd member in turn, several requests long
        members = len(self.client.backend.endpoints)
        stall = 2 * coord.poll_interval + 5 * coord.http_timeout * members \
            + 1.0
        if now - self._campaign_progress > stall:
            return False, 'campaign thread stalled'
        if self._is_leader():
            worker = self._leader_thread
            if worker is None or not worker.is_alive():
                return False, 'leading but the leader loop is not running'
            started = self._cycle_started
            budget = max(120.0, 10 * self.conf.engine.poll_interval)
            if started is not None and now - started > budget:
                return False, f'leader cycle running for {now - started:.0f} s'
            return True, 'leading'
        if self._etcd_error:
            return True, f'standby; etcd: {self._etcd_error}'
        return True, 'standby'

    # -- leadership ---------------------------------------------------------

    def _on_leadership(self, leading: bool) -> None:
        """Lease listener: called on every gain and loss of the lease."""
        self._transitions.inc()
        if leading:
            LOG.info('%s became leader (epoch %s)', self.member_id,
                     self.lease.epoch)
            self._wake.set()
            return
        LOG.warning('%s lost leadership: stopping the leader loop',
                    self.member_id)
        self._end_term()
        self._wake.set()

    def _end_term(self) -> None:
        self._term_over.set()
        with self._lock:
            leader_loop = self._loop
        if leader_loop is not None:
            leader_loop.stop()

    def _start_term(self) -> None:
        worker = self._leader_thread
        if worker is not None and worker.is_alive():
            return
        self._term_over.clear()
        worker = threading.Thread(target=self._lead, name='leader',
                                  daemon=True)
        self._leader_thread = worker
        worker.start()
        self._set_role('leader')

    def _lead(self) -> None:
        """Leader thread: one engine cycle per ``[engine] poll_interval``.

        The loop object lives as long as the replica: after ``stop()`` its
        next cycle starts a new term and joins what the last one left.
        """
        try:
            with self._lock:
                if self._loop is None:
                    self._loop = engine_loop.build(
                        self.conf, self.lease, self.store,
                        metrics=self.registry)
                leader_loop = self._loop
            interval = self.conf.engine.poll_interval
            while not self._term_over.is_set() and self._is_leader():
                started = time.monotonic()
                self._run_cycle(leader_loop)
                seeing = self.blindness.check_leader(leader_loop.blind_for())
                if seeing:
                    self._hand_over(seeing, leader_loop.blind_for())
                    break
                self._term_over.wait(
                    leader_loop.pause_after(started, interval))
        except BaseException as error:  # a bug: end the process, not hide it
            LOG.exception('leader loop crashed; shutting down')
            self._fatal = error
            self._stopping.set()
        finally:
            self._cycle_started = None
            self._set_role('standby')

    def _hand_over(self, seeing: list[str], blind_for: float) -> None:
        """Blind leader: stop acting and free the lease for ``seeing``."""
        LOG.warning('%s has been blind for %.0f s: handing leadership over '
                    'to a standby that sees the cloud (%s)', self.member_id,
                    blind_for, ', '.join(seeing))
        self.blindness.handed_over()
        self._end_term()
        if not self._wait_leader_work_stopped(STOP_GRACE):
            LOG.error('recoveries did not stop in time: leaving the lease '
                      'to expire instead of releasing it')
            return
        try:
            self.lease.release()
        except exceptions.StoreUnavailable as error:
            LOG.warning('could not release the lease: %s', error)

    def _publish_sight(self, record: dict[str, t.Any]) -> None:
        self.membership.update(**record)

    def _run_cycle(self, leader_loop: t.Any) -> None:
        started = time.monotonic()
        self._cycle_started = started
        try:
            sentence = leader_loop.run_cycle()
            LOG.info('cycle: %s', sentence)
        except exceptions.LeadershipLost as error:
            LOG.warning('cycle stopped: leadership lost: %s', error)
            self._term_over.set()
        except exceptions.StoreUnavailable as error:
            LOG.warning('cycle stopped: etcd unavailable: %s', error)
        finally:
            self._cycle_started = None
            self._cycles.inc()
            self._last_cycle.set(time.monotonic() - started)

    def _set_role(self, role: str) -> None:
        self.notifier.status(f'{self.member_id}: {role}')
        if not self._joined:
            return
        try:
            self.membership.update(role=role)
        except exceptions.StoreUnavailable as error:
            LOG.debug('cannot publish role %s: %s', role, error)

    # -- campaign -----------------------------------------------------------

    def _campaign(self) -> None:
        """Campaign thread: join the group, then keep contending."""
        interval = self.conf.coordination.poll_interval
        while not self._stopping.is_set():
            self._campaign_progress = time.monotonic()
            self._wake.clear()
            try:
                self._campaign_step()
                self._etcd_error = None
            except exceptions.StoreUnavailable as error:
                if self._etcd_error is None:
                    LOG.warning('etcd unavailable: %s', error)
                self._etcd_error = str(error)
                self._etcd_errors.inc()
            self._wake.wait(interval)

    def _campaign_step(self) -> None:
        if not self._joined:
            self.membership.start()
            self._joined = True
            LOG.info('%s joined cluster %s', self.member_id,
                     self.conf.coordination.cluster)
            self.notifier.ready(f'{self.member_id} joined cluster '
                                f'{self.conf.coordination.cluster}')
        if self.lease.is_leader:
            self._start_term()
            return
        # try_acquire reads the key first and grants a lease only when the
        # key is absent, so contending standbys do not churn leases; a
        # blind standby leaves a free lease to a member that sees.
        if not self._stopping.is_set() and self.blindness.may_campaign() \
                and self.lease.try_acquire():
            self._start_term()
        elif self.lease.last_error:
            raise exceptions.StoreUnavailable(self.lease.last_error)

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> Replica:
        """Start serving HTTP, watching, campaigning; returns at once."""
        if self.api is not None:
            self.api.start()
        self.sight.start()
        self.watchdog.start()
        self.lease.start()
        self.watch.start()
        self._campaign_thread = threading.Thread(
            target=self._campaign, name='campaign', daemon=True)
        self._campaign_thread.start()
        LOG.info('replica %s started (cluster %s, etcd %s)', self.member_id,
                 self.conf.coordination.cluster,
                 self.conf.coordination.backend_url)
        return self

    def request_stop(self, *_args: t.Any) -> None:
        """Ask the replica to stop (signal handler safe)."""
        self._stopping.set()
        self._wake.set()
        self._term_over.set()

    def wait(self) -> None:
        """Block until a stop is requested."""
        while not self._stopping.wait(0.5):
            pass

    def shutdown(self) -> int:
        """Stop the loop, release the lease, leave the group; exit code."""
        self.request_stop()
        self.notifier.stopping(f'{self.member_id} stopping')
        self._end_term()
        self.watch.stop()
        self.watchdog.stop()
        self.sight.stop()
        stopped = self._wait_leader_work_stopped(
            min(STOP_GRACE, max(self.lease.remaining(), 0.1)))
        if self._campaign_thread is not None:
            self._campaign_thread.join(
                self.conf.coordination.http_timeout * 3)
        self.lease.stop()
        if stopped:
            try:
                self.lease.release()
                LOG.info('%s released the leader lease', self.member_id)
            except exceptions.StoreUnavailable as error:
                LOG.warning('could not release the lease: %s', error)
        else:
            LOG.error('leader loop did not stop in time: leaving the lease '
                      'to expire instead of releasing it')
        if self._joined:
            try:
                self.membership.stop()
            except exceptions.StoreUnavailable as error:
                LOG.warning('could not leave the group: %s', error)
        if self.api is not None:
            self.api.stop()
        LOG.info('replica %s stopped', self.member_id)
        return 1 if self._fatal is not None else 0

    def _wait_leader_work_stopped(self, timeout: float) -> bool:
        """Wait for the leader thread and the loop's recovery runners.

        Only when nothing of ours can still cause a side effect may the
        lease be released early; otherwise it is left to expire.
        """
        deadline = time.monotonic() + timeout
        worker = self._leader_thread
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)
            if worker.is_alive():
                return False
        with self._lock:
            leader_loop = self._loop
        while leader_loop is not None and leader_loop.running():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def run(self) -> int:
        """Start, wait for SIGTERM/SIGINT, shut down; the exit code."""
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.start()
        try:
            self.wait()
        finally:
            code = self.shutdown()
        return code
