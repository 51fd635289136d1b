"""A threaded WSGI server and a tiny JSON routing layer for the sim APIs.

Each simulated API (Keystone, Nova, control) is a :class:`JsonApp`: a
routing table of ``(method, path pattern) -> handler``; handlers get a
:class:`Request` and return ``(status, body, headers)``. Injected latency
and error rates are applied here, before the handler runs.
"""
from __future__ import annotations

import json
import random
import re
import socketserver
import threading
import time
import typing as t
import urllib.parse
import uuid
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer

from oslo_log import log as logging

from freezer_dr.simulator.state import ApiError
from freezer_dr.simulator.state import Faults

LOG = logging.getLogger(__name__)

Body = t.Any
Result = tuple[int, Body, dict[str, str]]
Handler = t.Callable[..., Result]

REASONS = {200: 'OK', 201: 'Created', 202: 'Accepted', 204: 'No Content',
           300: 'Multiple Choices', 400: 'Bad Request',
           401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
           405: 'Method Not Allowed', 406: 'Not Acceptable',
           409: 'Conflict', 500: 'Internal Server Error',
           503: 'Service Unavailable'}


class Request:
    """The parts of a WSGI request the handlers use."""

    def __init__(self, environ: dict[str, t.Any]) -> None:
        self.environ = environ
        self.method: str = environ['REQUEST_METHOD'].upper()
        self.path: str = environ.get('PATH_INFO') or '/'
        self.query_string: str = environ.get('QUERY_STRING', '')
        self.multi = urllib.parse.parse_qs(self.query_string,
                                           keep_blank_values=True)
        self.query = {k: v[-1] for k, v in self.multi.items()}
        self.context: t.Any = None      # set by the app (auth context)
        self._body: bytes | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        key = 'HTTP_' + name.upper().replace('-', '_')
        if name.lower() == 'content-type':
            key = 'CONTENT_TYPE'
        return self.environ.get(key, default)

    @property
    def raw_body(self) -> bytes:
        if self._body is None:
            try:
                length = int(self.environ.get('CONTENT_LENGTH') or 0)
            except ValueError:
                length = 0
            self._body = (self.environ['wsgi.input'].read(length)
                          if length > 0 else b'')
        return self._body

    def json(self) -> t.Any:
        """The decoded JSON body; 400 if it is missing or malformed."""
        try:
            return json.loads(self.raw_body.decode('utf-8'))
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, 'Malformed request body')

    def url(self, path: str = '') -> str:
        """Absolute URL of ``path`` on this server."""
        host = self.environ.get('HTTP_HOST') or '{}:{}'.format(
            self.environ['SERVER_NAME'], self.environ['SERVER_PORT'])
        return f'http://{host}{path}'


class JsonApp:
    """A WSGI app that routes to handlers and speaks JSON."""

    #: key of this API in :class:`Faults` (latency, error rate)
    api_name = ''
    content_type = 'application/json'
    request_id_headers: tuple[str, ...] = ('X-OpenStack-Request-ID',)

    def __init__(self, faults: Faults | None = None) -> None:
        self.faults = faults
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._rng_lock = threading.Lock()

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        """Add a route; ``{name}`` in ``pattern`` matches one segment."""
        regex = re.sub(r'\{(\w+)\}', r'(?P<\1>[^/]+)', pattern)
        self.routes.append((method, re.compile(f'^{regex}/?$'), handler))

    def error(self, status: int, message: str) -> Result:
        """The API's error body (overridden per API)."""
        return status, {'error': {'code': status, 'message': message}}, {}

    def before(self, req: Request, handler: Handler) -> Result | None:
        """Hook run before the handler (auth, versions); a result ends it."""
        return None

    def after(self, req: Request, result: Result) -> Result:
        """Hook run on every result (response headers)."""
        return result

    def _inject(self) -> Result | None:
        if self.faults is None or not self.api_name:
            return None
        delay = self.faults.latency.get(self.api_name, 0.0)
        if delay > 0:
            time.sleep(delay)
        rate = self.faults.error_rate.get(self.api_name, 0.0)
        if rate > 0:
            if random.random() < rate:
                status = self.faults.error_status
                return self.error(status, f'Injected error {status}.')
        return None

    def dispatch(self, req: Request) -> Result:
        allowed = False
        for method, regex, handler in self.routes:
            match = regex.match(req.path)
            if match is None:
                continue
            allowed = True
            if method != req.method:
                continue
            early = self.before(req, handler)
            if early is not None:
                return early
            return handler(req, **match.groupdict())
        if allowed:
            return self.error(405, 'The method is not allowed for the '
                                   'requested URL.')
        return self.error(404, 'The resource could not be found.')

    def __call__(self, environ: dict[str, t.Any],
                 start_response: t.Callable[..., t.Any]) -> list[bytes]:
        req = Request(environ)
        result = self._inject()
        if result is None:
            try:
                result = self.dispatch(req)
            except ApiError as exc:
                result = self.error(exc.status, exc.message)
            except Exception:  # noqa: BLE001 - the API edge: answer 500
                LOG.exception('%s %s failed', req.method, req.path)
                result = self.error(500, 'Unexpected API Error. Please '
                                         'report this.')
        status, body, headers = self.after(req, result)
        payload = b'' if body is None else json.dumps(body).encode()
        hdrs = [(k, v) for k, v in headers.items()]
        request_id = f'req-{uuid.uuid4()}'
        hdrs += [(name, request_id) for name in self.request_id_headers]
        if body is not None:
            hdrs.append(('Content-Type', self.content_type))
        hdrs.append(('Content-Length', str(len(payload))))
        start_response(f'{status} {REASONS.get(status, "")}'.strip(), hdrs)
        return [payload]


class _ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    request_queue_size = 256


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: t.Any) -> None:
        LOG.debug('%s - ' + format, self.address_string(), *args)


class HttpServer:
    """One app served on a loopback port by a background thread."""

    def __init__(self, app: t.Callable[..., t.Any], host: str = '127.0.0.1',
                 port: int = 0) -> None:
        self._server = _ThreadingWSGIServer((host, port), _QuietHandler)
        self._server.set_app(app)
        self.host = host
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={'poll_interval': 0.05},
                                        daemon=True, name=f'http-{port}')

    @property
    def url(self) -> str:
        return f'http://{self.host}:{self.port}'

    def start(self) -> HttpServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
