"""What the leader makes of one look at the hosts, before the gates.

The monitor reports what its source says; this turns it into what the
gates may trust: a host list that is empty or suddenly shrunken, or
heartbeats that stopped on many hosts at once, is blindness
(MonitorUnavailable); hosts whose state cannot be read are blind on their
own; a host whose heartbeats stopped is down even while Nova still calls it
up (``engine/heartbeats.py``); and a suspect whose BMC reads it OFF needs
no confirmation window (a power read, never a command, in the background).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
import time
import typing as t

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.engine import fencing
from freezer_dr.engine import gates
from freezer_dr.engine import heartbeats
from freezer_dr.model import HostObservation
from freezer_dr.model import PowerState

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Look:
    """One look, ready for the gates."""
    hosts: list[HostObservation]       # silent hosts marked down
    unknown: dict[str, str]            # host -> why it cannot be read
    silent: dict[str, heartbeats.Silence]
    #: hosts a BMC read OFF since they fell quiet or down: no window
    off: frozenset[str] = frozenset()

#: the shortest pause before a look due for a quiet host
MIN_PAUSE = 0.05

#: a host this many heartbeats quiet has its BMC read (never a command):
#: one that reads OFF is down without waiting for more missed heartbeats
READ_AFTER = 1.2


@dataclasses.dataclass(frozen=True)
class WatchSettings:
    storm: gates.StormPolicy
    confirm_window: float
    observe_gap: float
    heartbeats: heartbeats.HeartbeatPolicy = heartbeats.HeartbeatPolicy()
    power_read_timeout: float = 10.0


class HostWatch:
    """One leader's judgement of its looks (memory dropped each term)."""

    def __init__(self, settings: WatchSettings) -> None:
        self.settings = settings
        self.heartbeats = heartbeats.HeartbeatTracker(settings.heartbeats)
        self._shrunk: tuple[int, float] | None = None
        #: hosts quiet in a mass silence that has not ended yet
        self._mass_quiet: set[str] = set()
        self._suspected: dict[str, float] = {}      # host -> monotonic
        #: when the next host would reach its missed heartbeats
        #: (monotonic): the next look is due then, not a poll later
        self.next_due: float | None = None
        self._power: dict[str, tuple[PowerState, float]] = {}
        self._reads: dict[str, concurrent.futures.Future] = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(
            4, thread_name_prefix='power-read')
        self._lock = threading.Lock()

    def new_term(self) -> None:
        self.heartbeats.forget()
        self._shrunk = None
        self._mass_quiet = set()
        self._suspected, self._power = {}, {}
        self.next_due = None

    def look(self, monitor, hosts_seen: int,
             levels: t.Callable[[str], list] = lambda host: [],
             trusted: t.Callable[[str], bool] = lambda host: False) -> Look:
        """The monitor's answer, judged; raises MonitorUnavailable.

        ``levels`` and ``trusted`` let a BMC settle it early: a host quiet
        for :data:`READ_AFTER` heartbeats, or already down, has its power
        read in the background; read OFF (by a level a readiness check
        vouched for), it is down at once.
        """
        self.next_due = None
        asked = time.monotonic()
        observations = monitor.hosts()
        self._check_shape(observations, hosts_seen)
        mono = time.monotonic()
        silences = self.heartbeats.observe(observations, mono, asked)
        policy = self.settings.heartbeats
        in_service = [o for o in observations if gates.in_service(o)]
        # Hosts fall silent in the order of their heartbeat phase: judge a
        # mass silence on those already one and a half beats quiet, so it
        # is seen before the first of them counts as a failed host.
        quiet = heartbeats.silent_hosts(
            in_service, silences, dataclasses.replace(
                policy, missed_heartbeats=max(
                    1.0, policy.missed_heartbeats - 1.5)))
        try:
            self._check_mass_silence(quiet, observations)
        except exceptions.MonitorUnavailable:
            self._mass_quiet |= set(quiet)
            raise
        if self._mass_quiet:
            # The mass silence ended; they resume in phase order too, so
            # the last to resume would look failed: their silence counts
            # from now (nobody could judge them during it).
            self.heartbeats.excuse(self._mass_quiet, mono)
            self._mass_quiet = set()
            silences = self.heartbeats.observe(observations, mono, asked)
        silent = heartbeats.silent_hosts(in_service, silences, policy)
        self.next_due = self.heartbeats.due(
            o.host for o in in_service
            if o.state == 'up' and not o.is_down and o.host not in silent)
        hosts = [heartbeats.with_silence(o, silent[o.host])
                 if o.host in silent else o for o in observations]
        waiting = set(heartbeats.silent_hosts(
            in_service, silences, dataclasses.replace(
                policy, missed_heartbeats=READ_AFTER)))
        waiting |= {o.host for o in hosts if o.is_down and
                    gates.in_service(o)}
        off = self.confirmed_off(waiting, levels, trusted)
        hosts = [_read_off(o) if o.host in off and not o.is_down else o
                 for o in hosts]
        unknown = {o.host: str(o.evidence.get('unknown') or 'no state')
                   for o in observations if o.is_unknown}
        return Look(hosts, unknown, silent, frozenset(off))

    def _check_shape(self, observations: list[HostObservation],
                     before: int) -> None:
        """An empty or suddenly shrunken host list is blindness.

        A list that shrank by more hosts than the storm guard allows is
        trusted only once it kept that size for a confirmation window
        (hosts retired on purpose); until then the monitor is blind.
        """
        if not observations:
            raise exceptions.MonitorUnavailable(
                'the monitor reported no compute hosts', judged=True)
        count = len(observations)
        gone = before - count
        storm = self.settings.storm
        if gone <= 1 or (gone <= storm.max_failed_hosts and
                         100.0 * gone / before <= storm.max_failed_percent):
            self._shrunk = None
            return
        if self._shrunk is None or self._shrunk[0] != count:
            self._shrunk = (count, time.monotonic())
        if time.monotonic() - self._shrunk[1] < max(
                self.settings.confirm_window, self.settings.observe_gap):
            raise exceptions.MonitorUnavailable(
                f'{gone} of {before} hosts vanished from the monitor',
                judged=True)
        LOG.warning('the monitor reports %d hosts, %d fewer than before: '
                    'accepted after a confirmation window', count, gone)
        self._shrunk = None

    def _check_mass_silence(self, silent: dict, observations: list) -> None:
        """Many services quiet at once while Nova calls them up: the
        heartbeats are not arriving (conductor, database, message bus),
        which says nothing about the hosts. One host is never that."""
        total = sum(1 for o in observations
                    if gates.in_service(o) and not o.is_unknown)
        storm = self.settings.storm
        count = len(silent)
        if count > 1 and total and (
                count > storm.max_failed_hosts
                or 100.0 * count / total > storm.max_failed_percent):
            raise exceptions.MonitorUnavailable(
                f'heartbeats stopped on {count} of {total} hosts at once '
                f'while Nova still calls them up: a stalled conductor, '
                f'database or message bus, not failed hosts', judged=True)

    def alive_after(self, host: str, observation: HostObservation | None,
                    stop: threading.Event):
        """For the readiness check: a callable telling whether ``host``
        heartbeats after a BMC read it OFF (two more heartbeats seen, so
        neither could predate the reading), or None if Nova does not call
        it up now."""
        if observation is None or observation.state != 'up' or \
                observation.is_down or self.heartbeats.changes(host) is None:
            return None

        def alive() -> bool:
            start = self.heartbeats.changes(host) or 0
            until = time.monotonic() + 3.5 * self.heartbeats.period(host)
            while not stop.wait(0.5) and time.monotonic() < until:
                now = self.heartbeats.changes(host)
                if now is None:
                    return False
                if now - start >= 2:
                    return True
            return False
        return alive

    # -- a BMC that reads OFF settles it ---------------------------------
    def confirmed_off(self, suspects: t.Iterable[str],
                      levels: t.Callable[[str], list],
                      trusted: t.Callable[[str], bool]) -> set[str]:
        """Hosts whose BMC read them OFF since they became of interest.

        Reads are started in the background for new ones (never a power
        command) and used on a later cycle; a host whose fencing readiness
        is in doubt (``trusted`` says no: e.g. an inventory entry that may
        point at another machine) is never settled this way.
        """
        now = time.monotonic()
        current = set(suspects)
        self._suspected = {h: self._suspected.get(h, now) for h in current}
        off = set()
        with self._lock:
            for host in current:
                state = self._power.get(host)
                if state and state[0] == PowerState.OFF and \
                        state[1] >= self._suspected[host]:
                    if trusted(host):
                        off.add(host)
                elif host not in self._reads:
                    try:
                        host_levels = levels(host)
                    except exceptions.ConfigError:
                        continue           # a broken entry settles nothing
                    self._reads[host] = self._pool.submit(
                        self._read, host, host_levels)
            for host in set(self._power) - current:
                del self._power[host]
        return off

    def _read(self, host: str, levels: list) -> None:
        try:
            started = time.monotonic()
            state = fencing.read_power(
                levels, started + self.settings.power_read_timeout)
            with self._lock:
                self._power[host] = (state, started)
        except Exception:       # a read that fails settles nothing
            LOG.exception('power read of suspect %s failed', host)
        finally:
            with self._lock:
                self._reads.pop(host, None)


def pause(started: float, interval: float, due: float | None) -> float:
    """Seconds until the next cycle: ``interval`` after this one started
    (at least half an interval after a cycle that overran it: a slow
    Nova or etcd is not asked again at once), or sooner when a quiet host
    reaches its missed heartbeats (a look right then sees it, not up to a
    poll later). A due time that passed before this cycle began was this
    cycle's business."""
    now = time.monotonic()
    if due is not None and started < due < started + interval:
        return max(MIN_PAUSE, due - now)
    if now - started >= interval:          # overran: rest before the next
        return interval / 2
    return started + interval - now


def _read_off(obs: HostObservation) -> HostObservation:
    """``obs`` marked down: its BMC read it OFF while it was quiet."""
    return dataclasses.replace(obs, down=True,
                               evidence=dict(obs.evidence, bmc_off=True))
