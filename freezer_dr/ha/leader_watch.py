"""A watch on the leader key that wakes a standby when leadership frees up.

Only a hint: standbys still poll the leader key, because a watch stream can
hang or miss events across reconnects. With the watch, a standby tries to
take over milliseconds after the old leader's key is deleted (release or
lease expiry) instead of at its next poll. Built from the replica's etcd
client, the watch uses the same TLS settings and moves to the next member
when a stream cannot be opened.
"""
from __future__ import annotations

import base64
import json
import socket
import threading
import typing as t
from collections.abc import Callable
from collections.abc import Sequence

import requests
import tenacity
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: what ends a stream without ending the watch
STREAM_ERRORS = (requests.RequestException, OSError, ValueError)


class LeaderKeyWatch:
    """Streams etcd watch events for one key and calls ``on_delete``.

    Every ``idle`` seconds without an event the stream is re-opened (the
    read times out), so a dead connection is noticed without a heartbeat.
    """

    def __init__(self, watch_url: str | Sequence[str] | Callable[[],
                                                                 list[str]],
                 key: str, on_delete: Callable[[], None],
                 connect_timeout: float, idle: float = 10.0,
                 retry: float = 1.0,
                 session: requests.Session | None = None) -> None:
        if isinstance(watch_url, str):
            watch_url = [watch_url]
        if not callable(watch_url):
            urls = list(watch_url)
            watch_url = lambda: urls  # noqa: E731
        self._urls: Callable[[], list[str]] = watch_url
        self._failed = 0        # streams in a row that could not open
        self._key = base64.b64encode(key.encode()).decode()
        self._on_delete = on_delete
        self._connect_timeout = connect_timeout
        self._idle = idle
        self._retry = retry
        self._stopped = threading.Event()
        self._session = session or requests.Session()
        self._response: requests.Response | None = None
        self._established = False
        self._thread: threading.Thread | None = None

    @classmethod
    def for_client(cls, client: t.Any, key: str,
                   on_delete: Callable[[], None], connect_timeout: float,
                   idle: float = 10.0, retry: float = 1.0) -> LeaderKeyWatch:
        """A watch through every member of a :class:`FailoverClient`,
        with its TLS settings (a session of its own: streams are long)."""
        return cls(lambda: client.endpoint_urls('/watch'), key, on_delete,
                   connect_timeout, idle=idle, retry=retry,
                   session=client.backend.session())

    def start(self) -> LeaderKeyWatch:
        self._thread = threading.Thread(target=self._run, name='leader-watch',
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop watching; does not wait for the stream thread.

        The stream's socket is shut down (not closed: the reading thread
        owns it) so that its blocked read returns at once.
        """
        self._stopped.set()
        response = self._response
        if response is None:
            return
        try:
            fd = response.raw.fileno()
            with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as s:
                s.shutdown(socket.SHUT_RDWR)
        except (OSError, ValueError, AttributeError) as error:
            LOG.debug('leader watch: cannot shut the stream down: %s', error)

    def _run(self) -> None:
        """Re-open the stream until stopped: at once after a stream that
        worked, ``retry`` s (and on the next member) after one that did
        not open."""
        tenacity.Retrying(
            retry=tenacity.retry_if_result(lambda _: True),
            stop=tenacity.stop_when_event_set(self._stopped),
            wait=lambda _state: 0.0 if self._failed == 0 else self._retry,
            sleep=self._stopped.wait,
            retry_error_callback=lambda _state: None)(self._watch_once)

    def _watch_once(self) -> None:
        """One stream, from opening to its end (idle timeout, error)."""
        if self._stopped.is_set():
            return
        self._established = False
        try:
            self._stream()
        except STREAM_ERRORS as err:
            # an idle read timeout of a working stream is normal
            LOG.debug('leader watch interrupted: %s', err)
        finally:
            self._response = None
        # after a stream that could not open, try the next member
        self._failed = 0 if self._established else self._failed + 1

    def _stream(self) -> None:
        request = {'create_request': {'key': self._key,
                                      'filters': ['NOPUT']}}
        urls = self._urls()
        url = urls[self._failed % len(urls)]
        with self._session.post(
                url, json=request, stream=True,
                timeout=(self._connect_timeout, self._idle)) as response:
            self._response = response
            response.raise_for_status()
            self._established = True
            for line in response.iter_lines():
                if self._stopped.is_set():
                    return
                if not line.strip():
                    continue
                result = json.loads(line).get('result', {})
                if result.get('events'):
                    self._on_delete()
