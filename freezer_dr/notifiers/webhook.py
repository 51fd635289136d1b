"""Webhook notifier: POST each event as JSON to one URL.

The body is the event (kind, summary, host, recovery, details) plus its
``key``, which is also sent as the ``Idempotency-Key`` header so the
receiver can drop a repeat. Any 2xx is success; anything else, a timeout
or a connection error raises ``NotifyFailed``. ``timeout`` bounds the
whole POST (connect, send, the full answer), however slowly the receiver
answers: the engine's lease check before it covers all of it. Logs name
the URL's host, never its path or query (those often carry a token).
"""
from __future__ import annotations

import dataclasses
import typing as t
import urllib.parse

import requests
from oslo_log import log as logging

from freezer_dr import deadline_http
from freezer_dr import exceptions
from freezer_dr.deadline import Deadline
from freezer_dr.deadline import DeadlineExceeded
from freezer_dr.notifiers import base

LOG = logging.getLogger(__name__)


class WebhookNotifier(base.Notifier):
    """JSON POST of every event (stevedore name ``webhook``)."""

    def __init__(self, url: str, timeout: float = 5.0,
                 ca_file: str | None = None,
                 session: requests.Session | None = None) -> None:
        parts = urllib.parse.urlsplit(url or '')
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise exceptions.ConfigError(
                '[webhook] url must be an http(s) URL')
        self.url = url
        self.timeout = timeout
        self.verify: bool | str = ca_file or True
        self.target = f'{parts.scheme}://{parts.netloc.rpartition("@")[2]}'
        self._session = session or requests.Session()
        adapter = deadline_http.BoundedAdapter()
        for prefix in ('https://', 'http://'):
            self._session.mount(prefix, adapter)

    @classmethod
    def from_config(cls, conf: t.Any,
                    connection: t.Any | None = None) -> WebhookNotifier:
        """Build from the ``[webhook]`` group (``connection`` unused)."""
        return cls(conf.webhook.url, conf.webhook.timeout,
                   conf.webhook.ca_file)

    def send(self, event: base.Event, key: str) -> None:
        """POST ``event``; NotifyFailed unless the answer is 2xx."""
        try:
            with Deadline(self.timeout) as deadline, \
                    deadline_http.bounded(deadline) as scope:
                body = {**dataclasses.asdict(event), 'key': key}
                resp = self._session.post(
                    self.url, json=body, timeout=self.timeout,
                    verify=self.verify, allow_redirects=False,
                    headers={'Idempotency-Key': key})
        except (requests.Timeout, DeadlineExceeded):
            raise exceptions.NotifyFailed(
                f'webhook {self.target} timed out: no complete answer '
                f'within {self.timeout:g} s ({scope.outcome()})')
        except requests.RequestException as e:
            raise exceptions.NotifyFailed(
                f'webhook {self.target} unreachable: {type(e).__name__}')
        if not 200 <= resp.status_code < 300:
            raise exceptions.NotifyFailed(
                f'webhook {self.target} answered HTTP {resp.status_code}')
        LOG.info('webhook %s took %s event (key %s)', self.target,
                 event.kind, key)
