"""The leader lease: one replica acts, and stops acting before it may not.

A replica becomes leader by creating ``/freezer-dr/<cluster>/leader`` (only
if absent) bound to a fresh etcd lease; the key's create revision is the
leader's *epoch*, the fencing token of every checkpoint write. The local
deadline is ``clock time before the last good keepalive + ttl`` (a
monotonic clock that also counts suspend): a failed or late keepalive
never moves it, so a partitioned leader demotes itself before etcd lets
anyone else in.
"""
from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
import typing as t

from etcd3gw.client import Etcd3Client
from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.ha import etcd

LOG = logging.getLogger(__name__)

SCHEMA_VERSION = 1

Listener = t.Callable[[bool], None]


def boottime() -> float:
    """Seconds since boot, counting time the machine spent suspended.

    ``time.monotonic`` stops while a VM or host is suspended, but etcd's
    lease keeps running out: a resumed leader would think it still leads.
    CLOCK_BOOTTIME does not stop; elsewhere fall back to monotonic.
    """
    return time.clock_gettime(_BOOTTIME)


_BOOTTIME = getattr(time, 'CLOCK_BOOTTIME', time.CLOCK_MONOTONIC)


def leader_key(cluster: str) -> str:
    """The etcd key that names the leader of ``cluster``."""
    return f'/freezer-dr/{cluster}/leader'


class LeaderLease:
    """Acquire, keep alive, watch the deadline of, and release leadership."""

    def __init__(self, client: Etcd3Client, cluster: str, member_id: str,
                 ttl: float, keepalive_interval: float, margin: float,
                 info: dict | None = None,
                 clock: t.Callable[[], float] = boottime) -> None:
        self.client = client
        self.cluster = cluster
        self.member_id = member_id
        self.ttl = float(ttl)
        self.keepalive_interval = float(keepalive_interval)
        self.margin = float(margin)
        self.info = dict(info or {})
        self.leader_key = leader_key(cluster)
        self.epoch: int | None = None
        self.since: float | None = None
        self.last_error: str | None = None
        self._clock = clock
        self._lease_id: int | None = None
        self._deadline = 0.0            # by self._clock; 0 = none
        self._listeners: list[Listener] = []
        self._state = threading.Lock()  # guards the fields above
        self._io = threading.RLock()    # one etcd conversation at a time
        self._notify_lock = threading.RLock()
        self._notified = False          # what listeners were last told
        self._timer: threading.Timer | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- state ----------------------------------------------------------
    @property
    def lease_id(self) -> int | None:
        return self._lease_id

    def remaining(self) -> float:
        """Seconds of lease left by our local deadline (0 if none)."""
        with self._state:
            if self._lease_id is None or self.epoch is None:
                return 0.0
            return max(0.0, self._deadline - self._clock())

    @property
    def is_leader(self) -> bool:
        """True while more than ``margin`` seconds of lease are left."""
        self._announce()
        return self.remaining() > self.margin

    def ensure(self, need: float = 0.0) -> int:
        """Our epoch if ``need`` seconds of action fit in the lease.

        Raises LeadershipLost otherwise: call before every side effect.
        """
        left = self.remaining()
        epoch = self.epoch
        if epoch is None or left <= self.margin + need:
            self._announce()
            raise exceptions.LeadershipLost(
                f'{self.member_id} is not leader of {self.cluster} with '
                f'{need:g} s to spare ({left:.2f} s of lease left, margin '
                f'{self.margin:g} s)')
        return epoch

    def ensure_waiting(self, need: float, stop: threading.Event) -> int:
        """:meth:`ensure`, waiting for the next keepalive if that helps.

        A leader whose lease is valid but too close to its deadline for
        ``need`` seconds of action waits (at most one TTL) for its
        keepalive to extend it instead of giving up; a replica that is not
        leader, or whose ``stop`` event is set, raises at once.
        """
        give_up = self._clock() + self.ttl
        while True:
            if stop.is_set():
                raise exceptions.LeadershipLost('stopped')
            try:
                return self.ensure(need=need)
            except exceptions.LeadershipLost:
                if not self.is_leader or self._clock() > give_up:
                    raise
            stop.wait(0.05)

    def add_listener(self, fn: Listener) -> None:
        """``fn(True)`` on gaining leadership, ``fn(False)`` on losing it.

        Called from the keepalive or deadline-timer thread, or from the
        thread that evaluates ``is_leader`` / ``ensure``: keep it short.
        """
        self._listeners.append(fn)

    # -- etcd conversation ----------------------------------------------
    def try_acquire(self) -> bool:
        """One attempt to become (or stay) leader; never leaks a lease.

        Returns False when another member leads or etcd cannot be reached
        (then ``last_error`` says why).
        """
        try:
            with self._io:
                return self._try_acquire()
        finally:
            self._announce()

    def _try_acquire(self) -> bool:
        if self._lease_id is not None:
            # We hold a lease (maybe after losing contact): renewing it is
            # the only way back, at the same epoch.
            if self._keepalive():
                return True
            if self._lease_id is not None:
                return False        # etcd unreachable: keep our lease
        try:
            return self._create_leader_key()
        except exceptions.StoreUnavailable as exc:
            self.last_error = str(exc)
            LOG.warning('%s: leadership attempt failed: %s',
                        self.member_id, exc)
            return False

    def _create_leader_key(self) -> bool:
        if etcd.get_key(self.client, self.leader_key) is not None:
            self.last_error = None
            return False            # somebody leads: grant nothing
        started = self._clock()
        lease_id, granted = etcd.grant_lease(self.client,
                                             math.ceil(self.ttl))
        since = time.time()
        value = json.dumps({**self.info, 'member_id': self.member_id,
                            'host': socket.gethostname(), 'pid': os.getpid(),
                            'since': since, 'schema': SCHEMA_VERSION})
        try:
            result = etcd.txn(
                self.client, [etcd.compare_create(self.leader_key, 0)],
                [etcd.put_op(self.leader_key, value, lease_id)],
                what='leader key create')
        except exceptions.StoreUnavailable:
            # The create may have landed: revoking removes it with the lease.
            self._revoke_quietly(lease_id)
            raise
        if not result['succeeded']:
            self._revoke_quietly(lease_id)
            self.last_error = None
            return False
        epoch = etcd.txn_revision(result)
        with self._state:
            self._lease_id, self.epoch, self.since = lease_id, epoch, since
            self._deadline = started + min(self.ttl, granted)
        self.last_error = None
        LOG.info('%s became leader of %s at epoch %d (lease %x, ttl %g s)',
                 self.member_id, self.cluster, epoch, lease_id, self.ttl)
        self._arm_timer()
        return self.remaining() > self.margin   # False if etcd was slow

    def keepalive(self) -> bool:
        """One keepalive; True if we are leader afterwards.

        The deadline only moves when etcd renewed the lease AND the leader
        key still carries it; a lost key or lease ends our leadership.
        """
        try:
            with self._io:
                return self._keepalive()
        finally:
            self._announce()

    def _keepalive(self) -> bool:
        lease_id, epoch = self._lease_id, self.epoch
        if lease_id is None or epoch is None:
            return False
        started = self._clock()
        try:
            ttl = etcd.refresh_lease(self.client, lease_id)
            current = (etcd.get_key(self.client, self.leader_key)
                       if ttl > 0 else None)
        except exceptions.StoreUnavailable as exc:
            self.last_error = str(exc)
            LOG.warning('%s: keepalive failed (%.2f s of lease left): %s',
                        self.member_id, self.remaining(), exc)
            return False
        self.last_error = None
        if ttl <= 0:
            self._lost(f'lease {lease_id:x} expired')
            return False
        if current is None or not _carries(current[1], lease_id, epoch):
            self._revoke_quietly(lease_id)
            self._lost('leader key no longer carries our lease')
            return False
        with self._state:
            was_lost = self._deadline <= self._clock() + self.margin
            self._deadline = max(self._deadline,
                                 started + min(self.ttl, ttl))
        if was_lost:
            LOG.info('%s is leader of %s again at the same epoch %d',
                     self.member_id, self.cluster, epoch)
        self._arm_timer()
        return self.remaining() > self.margin

    def release(self) -> None:
        """Delete the leader key if it is ours, and revoke our lease."""
        try:
            with self._io:
                self._release()
        finally:
            self._announce()

    def _release(self) -> None:
        lease_id = self._lease_id
        if lease_id is None:
            return
        try:
            etcd.txn(self.client,
                     [etcd.compare_lease(self.leader_key, lease_id)],
                     [etcd.delete_op(self.leader_key)],
                     what='leader key delete')
        except exceptions.StoreUnavailable as exc:
            LOG.warning('%s: could not delete the leader key: %s',
                        self.member_id, exc)
        self._revoke_quietly(lease_id)
        self._lost('released')

    def read_leader(self) -> dict | None:
        """The current leader as etcd says (linearizable read), or None."""
        found = etcd.get_key(self.client, self.leader_key)
        if found is None:
            return None
        raw, meta = found
        try:
            value = json.loads(raw)
        except ValueError:
            value = {'value_error': 'leader key is not JSON'}
        if not isinstance(value, dict):
            value = {'value_error': 'leader key is not a JSON object'}
        lease_id = int(meta.get('lease', 0))
        left = (etcd.lease_time_to_live(self.client, lease_id)
                if lease_id else None)
        return {**value,
                'member_id': value.get('member_id'),
                'epoch': int(meta['create_revision']),
                'lease_id': lease_id,
                'ttl_remaining': left,
                'mod_revision': int(meta['mod_revision'])}

    # -- background keepalive ------------------------------------------
    def start(self) -> None:
        """Keep the lease alive every ``keepalive_interval`` in a thread."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name=f'lease-{self.member_id}', daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the keepalive thread and timer (does not release)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self._cancel_timer()

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = self.keepalive_interval
            if self._lease_id is not None and not self.keepalive():
                wait = min(wait, 1.0)   # retry soon to keep the epoch
            self._stop.wait(wait)

    # -- internals ------------------------------------------------------
    def invalidate(self, reason: str) -> None:
        """Stop acting at once (e.g. a fenced write was rejected).

        The lease is kept, so a later keepalive can still prove the key is
        ours and restore leadership at the same epoch.
        """
        with self._state:
            self._deadline = 0.0
        LOG.warning('%s stops leading %s: %s', self.member_id, self.cluster,
                    reason)
        self._announce()

    def _lost(self, reason: str) -> None:
        with self._state:
            had = self._lease_id is not None
            self._lease_id, self.epoch, self.since = None, None, None
            self._deadline = 0.0
        self._cancel_timer()
        if had:
            LOG.info('%s is no longer leader of %s: %s', self.member_id,
                     self.cluster, reason)

    def _revoke_quietly(self, lease_id: int) -> None:
        """Revoke; if etcd is unreachable the lease expires by its TTL."""
        try:
            etcd.revoke_lease(self.client, lease_id)
        except exceptions.StoreUnavailable as exc:
            LOG.warning('%s: lease %x not revoked (expires in %g s): %s',
                        self.member_id, lease_id, self.ttl, exc)

    def _arm_timer(self) -> None:
        """Wake up when the deadline passes, to tell listeners promptly."""
        delay = self.remaining() - self.margin
        timer = threading.Timer(max(0.0, delay) + 0.001,
                                self._on_deadline)
        timer.daemon = True
        with self._state:
            old, self._timer = self._timer, timer
        if old is not None:
            old.cancel()
        timer.start()

    def _cancel_timer(self) -> None:
        with self._state:
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

    def _on_deadline(self) -> None:
        if not self.is_leader and self._lease_id is not None:
            LOG.warning('%s: lease deadline passed without a good '
                        'keepalive; standing down', self.member_id)

    def _announce(self) -> None:
        """Call the listeners if leadership changed since we last told.

        Never called with ``_io`` held, so a listener may call release().
        """
        with self._notify_lock:
            leader = self.remaining() > self.margin
            if leader == self._notified:
                return
            self._notified = leader
            for listener in list(self._listeners):
                try:
                    listener(leader)
                except Exception:   # a listener must not kill keepalives
                    LOG.exception('%s: leadership listener %r failed',
                                  self.member_id, listener)


def _carries(meta: dict, lease_id: int, epoch: int) -> bool:
    """Whether leader key metadata shows our lease and our epoch."""
    return (int(meta.get('lease', 0)) == lease_id
            and int(meta.get('create_revision', 0)) == epoch)
