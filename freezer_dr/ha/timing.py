"""Start-up validation of the [coordination] timing settings.

A leader must be able to renew its lease, with one HTTP timeout to spare,
before the lease runs out; a standby must look at the leader key often
enough to take over promptly. Bad combinations are refused at start-up.
"""
from __future__ import annotations

from oslo_log import log as logging

from freezer_dr import exceptions

LOG = logging.getLogger(__name__)

GROUP = '[coordination]'


def _opts(*names: str) -> str:
    return ', '.join(f'{GROUP} {name}' for name in names)


def validate(ttl: float, keepalive_interval: float | None,
             http_timeout: float, poll_interval: float,
             margin: float, endpoints: int = 1) -> float:
    """Check the timing settings; return the effective keepalive interval.

    ``keepalive_interval`` None means ``ttl / 3``; ``endpoints`` is the
    number of etcd members listed (a keepalive may try each in turn).
    Raises ConfigError naming the offending option(s).
    """
    if ttl < 2:
        raise exceptions.ConfigError(
            f'{_opts("lease_ttl")} must be at least 2 s (etcd rounds '
            f'shorter leases up), got {ttl}')
    interval = ttl / 3 if keepalive_interval is None else keepalive_interval
    for name, value in (('keepalive_interval', interval),
                        ('http_timeout', http_timeout),
                        ('poll_interval', poll_interval)):
        if value <= 0:
            raise exceptions.ConfigError(
                f'{_opts(name)} must be > 0, got {value}')
    if margin < 0:
        raise exceptions.ConfigError(
            f'{_opts("safety_margin")} must be >= 0, got {margin}')
    if http_timeout >= ttl / 2:
        raise exceptions.ConfigError(
            f'{_opts("http_timeout", "lease_ttl")}: http_timeout '
            f'({http_timeout} s) must be under half of lease_ttl '
            f'({ttl} s), or one hung request eats the lease')
    if margin >= ttl / 2:
        raise exceptions.ConfigError(
            f'{_opts("safety_margin", "lease_ttl")}: safety_margin '
            f'({margin} s) must be under half of lease_ttl ({ttl} s)')
    if interval + http_timeout + margin >= ttl:
        names = _opts('keepalive_interval', 'http_timeout',
                      'safety_margin', 'lease_ttl')
        raise exceptions.ConfigError(
            f'{names}: keepalive_interval + http_timeout + safety_margin '
            f'({interval:g} + {http_timeout:g} + {margin:g} s) must be '
            f'under lease_ttl ({ttl:g} s), or the leader demotes itself '
            f'between two good keepalives')
    if poll_interval > ttl / 2:
        raise exceptions.ConfigError(
            f'{_opts("poll_interval", "lease_ttl")}: poll_interval '
            f'({poll_interval} s) must be at most half of lease_ttl '
            f'({ttl} s), or a takeover waits too long')
    if 2 * interval + http_timeout + margin >= ttl:
        LOG.warning('%s: one lost keepalive will demote the leader '
                    '(2 x %g + %g + %g s >= lease_ttl %g s); consider a '
                    'shorter keepalive_interval',
                    _opts('keepalive_interval'), interval, http_timeout,
                    margin, ttl)
    if endpoints > 1 and interval + endpoints * http_timeout + margin >= ttl:
        LOG.warning('%s: a keepalive that tries all %d etcd members in '
                    'turn can take %g s; with keepalive_interval %g s and '
                    'safety_margin %g s the leader may demote itself while '
                    'one member hangs (lease_ttl %g s)',
                    _opts('http_timeout'), endpoints,
                    endpoints * http_timeout, interval, margin, ttl)
    return interval


def validate_handover(blind_handover_after: float, ttl: float) -> None:
    """``[engine] blind_handover_after`` must leave time to see again."""
    if blind_handover_after < ttl:
        raise exceptions.ConfigError(
            f'[engine] blind_handover_after ({blind_handover_after:g} s) '
            f'must be at least {GROUP} lease_ttl ({ttl:g} s), or '
            f'leadership moves on every short outage')
