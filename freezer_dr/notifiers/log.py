"""Log notifier: one oslo.log line per event (stevedore name ``log``)."""
from __future__ import annotations

import typing as t

from oslo_log import log as logging

from freezer_dr.notifiers import base

LOG = logging.getLogger(__name__)


class LogNotifier(base.Notifier):
    """Writes each event as one line: info if recovered, else warning."""

    @classmethod
    def from_config(cls, conf: t.Any,
                    connection: t.Any | None = None) -> LogNotifier:
        """No options; same signature as the other notifiers."""
        return cls()

    def send(self, event: base.Event, key: str) -> None:
        """Log ``event``; never fails."""
        recovery = event.recovery or {}
        ok = event.kind == 'recovered' and recovery.get('step') == 'done'
        LOG.log(logging.INFO if ok else logging.WARNING,
                'notify %(kind)s host=%(host)s recovery=%(id)s '
                'key=%(key)s: %(summary)s',
                {'kind': event.kind, 'host': event.host or '-',
                 'id': recovery.get('id', '-'), 'key': key,
                 'summary': event.summary})
