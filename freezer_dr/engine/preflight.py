"""Fencing readiness: find a broken BMC before its host fails.

While it leads, the leader reads the power state of every fencing level of
every host once per ``[fencing] check_interval`` (reads only, never a power
command), spread over the interval with at most ``check_concurrency``
reads at once. Each host's result is a fenced write under ``fencing/<host>``
in the store (per level: ok or the error, the power read, when). A host is
*ready* when every power-reading level answered; a host whose BMC reads it
OFF while Nova reports its compute service up is flagged as a likely
inventory mistake (fencing it would power off some other machine, or
nothing). Admins get one alert when a host turns not ready and one when it
is ready again.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
import time
import typing as t

import tenacity
from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.model import PowerState
from freezer_dr.model import now

LOG = logging.getLogger(__name__)

PREFIX = 'fencing/'
MISTAKE = ('reads OFF while the compute service keeps heartbeating: likely '
           'an inventory mistake (fencing would power off another machine, '
           'or nothing)')


@dataclasses.dataclass(frozen=True)
class ReadinessSettings:
    """From ``[fencing]``: how often, how many at once, how long a read."""
    interval: float = 300.0          # 0 = off
    concurrency: int = 4
    read_timeout: float = 10.0


def _read(level, read_timeout: float, retries: int = 1,
          retry_delay: float = 1.0) -> PowerState:
    """One level's power state; a failed read is tried again once (a BMC
    that drops a packet is not a broken BMC)."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(exceptions.FenceFailed),
        stop=tenacity.stop_after_attempt(retries + 1),
        wait=tenacity.wait_fixed(retry_delay), reraise=True,
    )(lambda: PowerState(level.power_state(time.monotonic() + read_timeout)))


#: ``alive_after()``: called when a level reads a host OFF that Nova
#: calls up; blocks until it can tell whether the host heartbeats after
#: that reading (True: the BMC must be some other machine's)
AliveAfter = t.Callable[[], bool]


def check_host(host: str, levels: t.Sequence[t.Any], read_timeout: float,
               alive_after: AliveAfter | None = None) -> dict:
    """Read every level of ``host`` (never a power command); the result.

    ``{"host", "ready", "summary", "checked_at", "levels": [{"index",
    "driver", "ok", "power", "error"}]}``. ``alive_after`` (None: Nova
    does not call the host up) tells an inventory mistake (the host keeps
    heartbeating although "its" BMC reads OFF) from a host that really
    just went off.
    """
    results = []
    for index, level in enumerate(levels, start=1):
        entry = {'index': index, 'driver': level.driver, 'ok': True,
                 'power': None, 'error': None}
        if level.operator_confirmed:
            entry['power'] = 'n/a (operator confirms)'
        else:
            try:
                power = _read(level, read_timeout)
                entry['power'] = power.value
                if power == PowerState.UNKNOWN:
                    entry.update(ok=False, error='power state unknown')
            except exceptions.FenceFailed as error:
                entry.update(ok=False, error=str(error))
            except Exception as error:      # a driver bug: not ready
                entry.update(ok=False, error=f'{type(error).__name__}: '
                                             f'{error}')
        results.append(entry)
    off = [e for e in results if e['ok'] and e['power'] == 'off']
    if off and alive_after is not None and alive_after():
        for entry in off:
            entry.update(ok=False, mistake=True, error=MISTAKE)
    problems = [f'{e["driver"]}: {e["error"]}' for e in results
                if not e['ok']]
    if not levels:
        problems.append('no fencing levels')
    return {'host': host, 'ready': not problems,
            'summary': '; '.join(problems) or 'ready',
            'checked_at': now(), 'levels': results}


class FencingReadiness:
    """The leader's background reader of every host's fencing levels."""

    def __init__(self, settings: ReadinessSettings, store, lease,
                 alert: t.Callable[[str, str, str, dict], bool],
                 gauge=None) -> None:
        self.settings = settings
        self.store = store
        self.lease = lease
        #: (kind, episode, summary, details) -> delivered
        self._alert = alert
        self._gauge = gauge              # freezer_dr_fencing_ready{host}
        self._thread: threading.Thread | None = None
        self._stop: threading.Event | None = None
        #: one record() of a host at a time: each reads the stored result
        #: to carry its ON reading forward (two checks of a host overlap
        #: when one outlives the interval, or across terms)
        self._recording: dict[str, threading.Lock] = {}
        self._recording_guard = threading.Lock()

    def ensure_running(self, drivers, stop: threading.Event,
                       alive_after: t.Callable[[str], AliveAfter | None],
                       ) -> None:
        """Start the reader for this term unless it runs (or is off)."""
        if self.settings.interval <= 0:
            return
        if self._thread is not None and self._thread.is_alive() \
                and self._stop is stop:
            return
        self._stop = stop
        self._thread = threading.Thread(
            target=self._run, args=(drivers, stop, alive_after),
            name='fencing-readiness', daemon=True)
        self._thread.start()

    def _run(self, drivers, stop: threading.Event, alive_after) -> None:
        busy = threading.Semaphore(self.settings.concurrency)
        with concurrent.futures.ThreadPoolExecutor(
                self.settings.concurrency,
                thread_name_prefix='fencing-check') as pool:
            while not stop.is_set():
                started = time.monotonic()
                hosts = drivers.inventory.hosts()
                slot = self.settings.interval / max(1, len(hosts))
                for i, host in enumerate(hosts):
                    start_at = started + i * slot
                    if stop.wait(max(0.0, start_at - time.monotonic())) \
                            or not self.lease.is_leader:
                        return
                    busy.acquire()
                    pool.submit(self._check, drivers, host, alive_after,
                                stop).add_done_callback(
                                    lambda _f: busy.release())
                stop.wait(max(0.0, started + self.settings.interval
                              - time.monotonic()))

    def _check(self, drivers, host: str, alive_after,
               stop: threading.Event) -> None:
        try:
            try:
                levels = drivers.fencers(host)
            except exceptions.ConfigError as error:   # a broken entry
                result = {'host': host, 'ready': False,
                          'summary': str(error), 'checked_at': now(),
                          'levels': []}
            else:
                result = check_host(host, levels, self.settings.read_timeout,
                                    alive_after(host))
            if not stop.is_set():
                self.record(result)
        except exceptions.LeadershipLost:
            return
        except exceptions.FreezerDRError as error:
            LOG.warning('fencing check of %s not recorded: %s', host, error)
        except Exception:
            LOG.exception('fencing check of %s failed', host)

    def record(self, result: dict) -> None:
        """Store one host's result (fenced); alert once per change.

        The alert due for a change is kept with the result until it was
        delivered, so a failed delivery is tried again at the next check,
        whoever leads by then.
        """
        host = result['host']
        with self._recording_guard:
            lock = self._recording.setdefault(host, threading.Lock())
        with lock:
            self._record(host, result)

    def _record(self, host: str, result: dict) -> None:
        stored, written = self.store.get_with_revision(PREFIX + host)
        previous = stored or {}
        # an ON reading outlives the results stored after it: a confirmation
        # older than it must stay refused (power_on_since)
        on_revision = written if read_on(previous) else previous.get(
            'on_revision', 0)
        was = previous.get('ready')
        changed = was is None or was != result['ready']
        since = result['checked_at'] if changed else previous.get(
            'since', result['checked_at'])
        due = previous.get('alert_due')
        if changed:
            due = ('fencing_not_ready' if not result['ready'] else
                   'fencing_ready' if was is False else None)
        if due and self._send(due, host, since, result):
            due = None
        self.store.put_fenced(PREFIX + host,
                              dict(result, since=since, alert_due=due,
                                   on_revision=on_revision))
        if self._gauge is not None:
            self._gauge.labels(host=host).set(int(result['ready']))
        LOG.info('fencing check of %s: %s', host, result['summary'])

    def _send(self, kind: str, host: str, since: float,
              result: dict) -> bool:
        if kind == 'fencing_ready':
            summary = f'fencing of {host} is ready again'
        else:
            summary = f'fencing of {host} is not ready: {result["summary"]}'
        return self._alert(kind, f'{host}:{since:.0f}', summary,
                           {'host': host, 'levels': result['levels']})


def distrusted_levels(result: dict | None) -> dict[int, str]:
    """Levels a readiness result flags as likely inventory mistakes."""
    return {e['index']: f'the readiness check of '
                        f'{time.ctime(result["checked_at"])}: {MISTAKE}; '
                        f'fix the fencing inventory'
            for e in (result or {}).get('levels', []) if e.get('mistake')}


def read_on(result: dict | None) -> bool:
    """Whether a readiness result holds an ON reading of the host."""
    return any(e.get('power') == 'on' for e in (result or {}).get(
        'levels', []))


def results(store) -> dict[str, dict]:
    """The latest stored result of every host."""
    return store.values(PREFIX)


def summary_line(found: dict[str, dict]) -> str:
    """``fencing: 47/48 hosts ready; compute-12: ipmi: ...``."""
    if not found:
        return 'fencing: not checked yet'
    bad = sorted((h, r) for h, r in found.items() if not r.get('ready'))
    text = f'fencing: {len(found) - len(bad)}/{len(found)} hosts ready'
    shown = [f'{h}: {r.get("summary")}' for h, r in bad[:3]]
    more = f'; and {len(bad) - 3} more' if len(bad) > 3 else ''
    return '; '.join([text] + shown) + more


def power_on_since(store, host: str, revision: int) -> bool:
    """Whether a readiness check read ``host`` ON after etcd revision
    ``revision`` (e.g. after an operator confirmed it off)."""
    result, written = store.get_with_revision(PREFIX + host)
    if written > revision and read_on(result):
        return True
    # read ON by an earlier check whose result a later one replaced
    return (result or {}).get('on_revision', 0) > revision


def distrusted(store, host: str) -> dict[int, str]:
    """The host's levels its last readiness check flagged as mistakes."""
    return distrusted_levels(store.get(PREFIX + host))


def vouched(store, host: str) -> bool:
    """A readiness check vouched for the host's fencing (no doubt that
    its inventory entry is its own); no check yet is no vouching."""
    result = store.get(PREFIX + host)
    return bool(result and result.get('ready'))
