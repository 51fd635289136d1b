"""Cluster-wide admin alerts, sent off the leader's cycle.

Storm, blindness, unknown hosts, unreadable data, failed cycles: the cycle
*submits* an alert and goes on; one background thread per term delivers
it (``Notification.cluster_alert``: once per kind and episode, whoever
leads, the lease checked before each delivery) and tries again later what
could not be delivered. A slow or dead mail server never slows a cycle, so
it never stretches the time between two looks at the hosts.
"""
from __future__ import annotations

import hashlib
import threading
import typing as t

from oslo_log import log as logging

from freezer_dr import exceptions

LOG = logging.getLogger(__name__)

#: seconds between two attempts at alerts that could not be delivered
RETRY = 5.0

Send = t.Callable[[str, str, str, 'dict | None'], bool]


def episode_of(*parts: object) -> str:
    """A short episode key that is the same in every process."""
    text = '\x1f'.join(str(p) for p in parts)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class ClusterAlerts:
    """Pending cluster alerts of one term and the thread that sends them."""

    def __init__(self, send: Send, stop: threading.Event) -> None:
        self._send = send
        self._stop = stop
        self._pending: dict[str, tuple] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def submit(self, kind: str, episode: str, summary: str,
               details: dict | None = None) -> None:
        """Queue an alert (a repeat of a pending one changes nothing)."""
        with self._lock:
            self._pending.setdefault(f'{kind}:{episode}',
                                     (kind, episode, summary, details))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name='cluster-alerts', daemon=True)
                self._thread.start()
        self._wake.set()

    def pending(self) -> list[str]:
        with self._lock:
            return sorted(self._pending)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            with self._lock:
                items = list(self._pending.items())
                if not items:
                    self._thread = None
                    return
            for key, args in items:
                if self._stop.is_set():
                    return
                try:
                    delivered = self._send(*args)
                except Exception:       # the alert path may be broken too
                    LOG.exception('cluster alert %s not delivered', key)
                    delivered = False
                if delivered:
                    with self._lock:
                        self._pending.pop(key, None)
            self._wake.wait(RETRY)


class AdminAlerts:
    """The leader's cluster-wide alerts, by what they are about.

    ``send(kind, episode, summary, details)`` delivers one alert now
    (Notification.cluster_alert); :meth:`submit` queues it for the
    background sender of the current term.
    """

    def __init__(self, send: Send, stop: threading.Event,
                 send_without_cloud: t.Callable[[], Send | None]
                 = lambda: None) -> None:
        self.send = send
        self._queue = ClusterAlerts(send, stop)
        self._send_without_cloud = send_without_cloud
        self._blind_queue: ClusterAlerts | None = None
        self._stop = stop

    @classmethod
    def for_term(cls, notification: t.Callable[[dict], t.Any], store, lease,
                 need: float, stop: threading.Event,
                 notifiers: t.Callable[[], dict],
                 load_notifiers: t.Callable[[], dict] | None) -> AdminAlerts:
        """The alerts of one term: sent through ``notifiers()`` (the
        loaded drivers'), or through ``load_notifiers()`` alone when the
        drivers cannot load (no cloud)."""
        def sender(found: dict) -> Send:
            alert = notification(found)
            return lambda kind, episode, summary, details=None: \
                alert.cluster_alert(store, lease, need, kind, episode,
                                    summary, details, rounds=1)

        def without_cloud() -> Send | None:
            if load_notifiers is None:
                return None
            try:
                return sender(load_notifiers())
            except exceptions.FreezerDRError as error:
                LOG.error('cannot load the notifiers either: %s', error)
                return None

        return cls(lambda *alert: sender(notifiers())(*alert), stop,
                   without_cloud)

    def submit(self, kind: str, episode: str, summary: str,
               details: dict | None = None) -> None:
        self._queue.submit(kind, episode, summary, details)

    def pending(self) -> list[str]:
        return self._queue.pending()

    def hosts_unknown(self, since: dict[str, float],
                      why: dict[str, str]) -> None:
        """One alert per batch of hosts that turned unknown together."""
        batches: dict[float, list[str]] = {}
        for host, at in since.items():
            batches.setdefault(at, []).append(host)
        for at, hosts in sorted(batches.items()):
            hosts.sort()
            self.submit(
                'hosts_unknown', f'{at:.3f}:{hosts[0]}',
                f'{len(hosts)} host(s) cannot be read from the monitor and '
                f'will not be fenced until they can: '
                + ', '.join(f'{h} ({why[h]})' for h in hosts[:20]),
                {'hosts': hosts})

    def record_unreadable(self, host: str, error: str) -> None:
        self.submit('record_unreadable', episode_of(host, error),
                    f'the recovery record of {host} cannot be read '
                    f'({error}): the host is held until it can')

    def inventory_broken(self, broken: dict[str, str]) -> None:
        if broken:
            self.submit(
                'inventory_broken', episode_of(sorted(broken.items())),
                f'{len(broken)} host(s) of the fencing inventory cannot be '
                f'fenced until it is fixed: ' + '; '.join(
                    broken[h] for h in sorted(broken)[:10]),
                {'hosts': sorted(broken)})

    def cannot_observe(self, error: Exception, episode: str) -> None:
        """Nothing loads (no cloud, a broken configuration): the alert
        goes out through the notifiers alone, which need no cloud."""
        if self._blind_queue is None:
            send = self._send_without_cloud()
            if send is None:
                return
            self._blind_queue = ClusterAlerts(send, self._stop)
        self._blind_queue.submit(
            'cannot_observe', episode_of(type(error).__name__, episode),
            f'the leader cannot observe the cloud: {error}')
