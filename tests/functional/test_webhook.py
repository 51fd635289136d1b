"""Webhook notifier against a real HTTP server on loopback."""
from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from freezer_dr import exceptions
from freezer_dr.notifiers.base import Event
from freezer_dr.notifiers.webhook import WebhookNotifier
from freezer_dr.simulator.smtp import free_tcp_port
from tests.fixtures.dribble import DribblingHttp


class Receiver(http.server.ThreadingHTTPServer):
    """Records every POST; answers ``status`` after ``delay`` seconds."""
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(('127.0.0.1', 0), _Handler)
        self.status = 200
        self.delay = 0.0
        self.received: list[dict] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f'http://127.0.0.1:{self.server_address[1]}/hooks/secret-tok'


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers['Content-Length'])
        body = json.loads(self.rfile.read(length))
        self.server.received.append(
            {'path': self.path, 'headers': dict(self.headers),
             'body': body})
        if self.server.delay:
            self.server.release.wait(self.server.delay)
        self.send_response(self.server.status)
        self.send_header('Content-Length', '0')
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver():
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


EVENT = Event('recovered', 'host c3: 2 of 2 instances evacuated',
              host='c3', recovery={'id': 'rec-9', 'step': 'done'},
              details={'n': 2})


def test_2xx_delivers_the_event_as_json_with_idempotency_key(receiver):
    receiver.status = 202
    WebhookNotifier(receiver.url, timeout=5).send(EVENT, 'rec-9:recovered')
    [req] = receiver.received
    assert req['path'] == '/hooks/secret-tok'
    assert req['headers']['Idempotency-Key'] == 'rec-9:recovered'
    assert req['headers']['Content-Type'] == 'application/json'
    assert req['body'] == {
        'kind': 'recovered', 'summary': 'host c3: 2 of 2 instances '
        'evacuated', 'host': 'c3', 'recovery': {'id': 'rec-9',
                                                'step': 'done'},
        'details': {'n': 2}, 'key': 'rec-9:recovered'}


def test_500_is_notify_failed_with_the_status(receiver):
    receiver.status = 500
    with pytest.raises(exceptions.NotifyFailed, match='HTTP 500') as err:
        WebhookNotifier(receiver.url, timeout=5).send(EVENT, 'k')
    assert 'secret-tok' not in str(err.value)
    assert len(receiver.received) == 1


def test_redirect_is_not_followed_and_fails(receiver):
    receiver.status = 302
    with pytest.raises(exceptions.NotifyFailed, match='HTTP 302'):
        WebhookNotifier(receiver.url, timeout=5).send(EVENT, 'k')


def test_timeout_is_notify_failed(receiver):
    receiver.delay = 30
    started = time.monotonic()
    with pytest.raises(exceptions.NotifyFailed, match='timed out'):
        WebhookNotifier(receiver.url, timeout=0.3).send(EVENT, 'k')
    assert time.monotonic() - started < 25  # did not wait for the answer


def test_dribbling_receiver_cannot_hold_the_post_past_its_timeout():
    """requests' timeout bounds each read; a receiver sending one byte
    every 0.2 s would hold the POST for 12 s. The whole POST is bounded."""
    timeout = 1.0
    with DribblingHttp(lambda method, path: (200, {'ok': True}, 'dribble'),
                       interval=0.2, dribble_for=12.0) as receiver:
        started, wall = time.monotonic(), time.time()
        try:
            WebhookNotifier(f'{receiver.url}/hook', timeout=timeout).send(
                EVENT, 'k')
            error = None
        except exceptions.NotifyFailed as failure:
            error = failure
        took = time.monotonic() - started
    assert took < timeout + 0.7
    assert error is not None and 'timed out' in str(error)
    assert 'outcome is unknown' in str(error)
    [(arrived, method, path)] = receiver.log
    assert method == 'POST' and arrived < wall + timeout


def test_unreachable_is_notify_failed():
    url = f'http://127.0.0.1:{free_tcp_port()}/hook'
    with pytest.raises(exceptions.NotifyFailed, match='unreachable'):
        WebhookNotifier(url, timeout=2).send(EVENT, 'k')


@pytest.mark.parametrize('url', [None, '', 'ftp://x/y', 'http://'])
def test_bad_url_is_config_error(url):
    with pytest.raises(exceptions.ConfigError, match='url'):
        WebhookNotifier(url)
