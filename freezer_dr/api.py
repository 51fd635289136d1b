"""Per-replica HTTP endpoint: ``/leader``, ``/healthz`` and ``/metrics``.

``GET /leader`` answers 200 only while this replica holds a valid lease
(load balancers and operators use it to find the acting leader), else 503;
``GET /healthz`` answers 200 while the replica's threads make progress;
``GET /metrics`` serves the Prometheus registry.
"""
from __future__ import annotations

import json
import threading
import typing as t
from http import server

from oslo_log import log as logging

from freezer_dr import metrics

LOG = logging.getLogger(__name__)


class ReplicaState(t.Protocol):
    """What the endpoint needs to know about its replica."""

    def leader_status(self) -> dict[str, t.Any]:
        """``{member_id, leader, epoch, lease_remaining, ...}``; ``leader``
        is True only while this replica holds a valid lease."""

    def health(self) -> tuple[bool, str]:
        """(healthy, one-line reason)."""


class _Handler(server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = 'HTTP/1.1'
    # headers and body go out in two writes: without this, Nagle and the
    # client's delayed ACK add ~40 ms to every keep-alive request
    disable_nagle_algorithm = True

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        path = self.path.split('?', 1)[0].rstrip('/') or '/'
        if path == '/leader':
            status = self.server.state.leader_status()
            code = 200 if status.get('leader') else 503
            self._send_json(code, status)
        elif path == '/healthz':
            healthy, reason = self.server.state.health()
            self._send_json(200 if healthy else 503,
                            {'healthy': healthy, 'reason': reason})
        elif path == '/metrics':
            body = self.server.registry.render().encode()
            self._send(200, metrics.CONTENT_TYPE, body)
        else:
            self._send_json(404, {'error': f'no such resource: {path}'})

    def _send_json(self, code: int, data: dict[str, t.Any]) -> None:
        body = json.dumps(data, sort_keys=True).encode() + b'\n'
        self._send(code, 'application/json', body)

    def _send(self, code: int, content_type: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.send_header('Cache-Control', 'no-store')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: t.Any) -> None:  # noqa: A002
        LOG.debug('api %s: ' + format, self.address_string(), *args)


class _Server(server.ThreadingHTTPServer):
    daemon_threads = True
    # a replica restarted on the same port must bind again at once
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: ReplicaState,
                 registry: metrics.Registry) -> None:
        self.state = state
        self.registry = registry
        super().__init__(address, _Handler)


class ApiServer:
    """The endpoint of one replica, served from a background thread."""

    def __init__(self, bind_host: str, bind_port: int, state: ReplicaState,
                 registry: metrics.Registry) -> None:
        self._httpd = _Server((bind_host, bind_port), state, registry)
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound (port 0 resolves here)."""
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> ApiServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={'poll_interval': 0.2},
            name='api', daemon=True)
        self._thread.start()
        LOG.info('HTTP endpoint listening on %s:%d', *self.address)
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()
