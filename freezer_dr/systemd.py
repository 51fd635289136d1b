"""The systemd notify protocol: READY=1, STATUS=, STOPPING=1, WATCHDOG=1.

A datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace), as
``sd_notify(3)`` describes and oslo.service's ``systemd`` module does. The
watchdog pings only while a health check says the service makes progress,
so systemd restarts a replica whose threads are stuck.
"""
from __future__ import annotations

import os
import socket
import typing as t

from oslo_log import log as logging

from freezer_dr import periodic

LOG = logging.getLogger(__name__)

Health = t.Callable[[], tuple[bool, str]]


def socket_address(name: str) -> str:
    """The address to send to: ``@x`` is the abstract socket ``\\0x``."""
    return '\0' + name[1:] if name.startswith('@') else name


class Notifier:
    """Sends notifications to systemd; does nothing when not under it."""

    def __init__(self, environ: t.Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = env.get('NOTIFY_SOCKET') or None
        self.watchdog_interval = _watchdog_interval(env)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, **fields: t.Any) -> bool:
        """Send ``KEY=value`` fields in one datagram; True if sent."""
        if self.address is None:
            return False
        message = '\n'.join(f'{key.upper()}={_one_line(value)}'
                            for key, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(socket_address(self.address))
                sock.sendall(message.encode('utf-8'))
        except OSError as error:
            LOG.debug('systemd notification %r failed: %s', message, error)
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify(ready=1, status=status)

    def status(self, status: str) -> bool:
        return self.notify(status=status)

    def stopping(self, status: str = 'stopping') -> bool:
        return self.notify(stopping=1, status=status)

    def watchdog(self) -> bool:
        return self.notify(watchdog=1)


def _one_line(value: t.Any) -> str:
    return str(value).replace('\n', ' ')


def _watchdog_interval(env: t.Mapping[str, str]) -> float | None:
    """Seconds of ``WatchdogSec`` if it applies to this process, else None."""
    try:
        usec = int(env.get('WATCHDOG_USEC', ''))
    except ValueError:
        return None
    pid = env.get('WATCHDOG_PID')
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1e6


class Watchdog:
    """Pings systemd's watchdog every half interval while ``health`` is ok.

    A replica whose campaign (or, leading, whose leader loop) stalls stops
    pinging; systemd then kills and restarts it (``Restart=on-failure``).
    """

    def __init__(self, notifier: Notifier, health: Health) -> None:
        self.notifier = notifier
        self.health = health
        self._pinger: periodic.Periodic | None = None
        self._silent_since_reason: str | None = None

    def start(self) -> Watchdog:
        interval = self.notifier.watchdog_interval
        if self.notifier.enabled and interval is not None:
            self._pinger = periodic.Periodic(
                'sd-watchdog', interval / 2, self.ping_if_healthy).start()
        return self

    def stop(self) -> None:
        if self._pinger is not None:
            self._pinger.stop()
            self._pinger = None

    def ping_if_healthy(self) -> bool:
        """One round: ping if healthy; True if a ping was sent."""
        healthy, reason = self.health()
        if healthy:
            if self._silent_since_reason is not None:
                LOG.info('healthy again (%s): watchdog pings resume', reason)
                self._silent_since_reason = None
            return self.notifier.watchdog()
        if self._silent_since_reason != reason:
            LOG.error('unhealthy (%s): no watchdog ping; systemd will '
                      'restart this replica if it lasts', reason)
            self._silent_since_reason = reason
        return False
