"""Whether this replica can see the cloud: one cheap compute call at a time.

Every replica looks at the compute API every ``interval`` seconds (at most
10 s) with a single request, ``GET /os-services?binary=nova-compute&host=
<none>``: it needs a token (Keystone and our credentials), the compute
endpoint from the catalog, nova-api and its database, and the very policy
the Nova monitor needs (listing services), yet returns an empty list
whatever the size of the cloud. The outcome is published in the replica's
member record (``cloud_seen_at``, ``cloud_checked_at``, ``cloud_error``)
so that a blind leader can hand over to a standby that sees.
"""
from __future__ import annotations

import time
import typing as t

import openstack.exceptions as sdk_exc
from oslo_log import log as logging

from freezer_dr import cloud
from freezer_dr import exceptions
from freezer_dr import periodic

LOG = logging.getLogger(__name__)

#: a host name no compute service has: the answer is an empty list
PROBE_HOST = 'freezer-dr-sight-probe'
MAX_INTERVAL = 10.0

Publish = t.Callable[[dict[str, t.Any]], None]


def look_interval(blind_handover_after: float) -> float:
    """How often to look: often enough to hand over in time, <= 10 s."""
    return max(0.5, min(MAX_INTERVAL, blind_handover_after / 3))


def record(seen_at: float | None, checked_at: float | None,
           error: str | None) -> dict[str, t.Any]:
    """The member-record fields that say what this replica sees."""
    return {'cloud_seen_at': seen_at, 'cloud_checked_at': checked_at,
            'cloud_error': error}


class CloudSight:
    """Looks at the cloud in a thread and publishes what it saw."""

    def __init__(self, connect: t.Callable[[], t.Any], interval: float,
                 publish: Publish,
                 clock: t.Callable[[], float] = time.time) -> None:
        self._connect = connect
        self.interval = interval
        self._publish = publish
        self._clock = clock
        self._conn: t.Any = None
        self.seen_at: float | None = None       # last good look (wall)
        self.checked_at: float | None = None    # last look (wall)
        self.error: str | None = 'not looked yet'
        self.looks = 0
        # a daemon: a slow look may linger past stop()
        self._looker = periodic.Periodic('sight', self.interval,
                                         self._look_and_publish,
                                         join_timeout=1.0)

    @property
    def sees(self) -> bool:
        """True when the last look, not too long ago, went well."""
        if self.error is not None or self.checked_at is None:
            return False
        return self._clock() - self.checked_at <= 3 * self.interval

    def record(self) -> dict[str, t.Any]:
        return record(self.seen_at, self.checked_at, self.error)

    def look(self) -> bool:
        """One look (one compute request once connected); True if it saw."""
        started = self._clock()
        try:
            if self._conn is None:
                self._conn = self._connect()
            response = self._conn.compute.get(
                '/os-services',
                params={'binary': 'nova-compute', 'host': PROBE_HOST})
            sdk_exc.raise_from_response(response)
            error = None
        except exceptions.ConfigError as exc:
            error = str(exc)
        except cloud.API_ERRORS as exc:
            error = cloud.describe_error(exc)
        self.looks += 1
        self.checked_at = started
        if error is None:
            self.seen_at = started
            if self.error is not None:
                LOG.info('the cloud is in sight')
        elif error != self.error:
            LOG.warning('cannot see the cloud: %s', error)
        self.error = error
        return error is None

    def start(self) -> CloudSight:
        self._looker.start()
        return self

    def stop(self) -> None:
        self._looker.stop()

    def _look_and_publish(self) -> None:
        try:
            self.look()
        except Exception as exc:    # a bug must not end the looks
            LOG.exception('looking at the cloud failed')
            self.error = f'{type(exc).__name__}: {exc}'
            self.checked_at = self._clock()
        try:
            self._publish(self.record())
        except exceptions.StoreUnavailable as exc:
            LOG.debug('cannot publish what this replica sees: %s', exc)


def connector(conf: t.Any, interval: float) -> t.Callable[[], t.Any]:
    """A function building the Connection the looks go through.

    Its API timeout is at most half the look interval, so a look never
    delays the next one much.
    """
    timeout = min(conf.cloud.api_timeout, max(1.0, interval / 2))
    return lambda: cloud.connect(conf, api_timeout=timeout)
