"""An etcd3gw client that moves between the members of an etcd cluster.

Every etcd3gw call ends in :meth:`Etcd3Client.post`; this client sends it
to its *current* member and moves to the next one on a connection error,
a timeout or a member that cannot serve (etcd's "no leader", HTTP 503).
A request that never reached a member (connection refused, connect
timeout, TLS handshake) is sent to the next member at once. A request
that may have been applied (read timeout, reset, 503) is re-sent only if
repeating it is harmless (reads, keepalives, revokes); otherwise the
caller gets the error and the next call goes to the next member.
A JSON error body under HTTP 200 (etcd 3.4's gateway answers a failed
keepalive stream so) is an error, never a result.
"""
from __future__ import annotations

import threading
import typing as t

import requests
from etcd3gw import exceptions as etcd_exc
from etcd3gw.client import Etcd3Client
from oslo_log import log as logging

from freezer_dr.ha import endpoints as ep

LOG = logging.getLogger(__name__)

#: API paths whose request can be repeated on another member unharmed.
REPEATABLE = frozenset({
    'kv/range', 'lease/keepalive', 'kv/lease/timetolive', 'lease/leases',
    'kv/lease/revoke', 'lease/revoke', 'maintenance/status',
    'cluster/member/list'})
#: gRPC code of "unavailable" (no leader, request timed out)
GRPC_UNAVAILABLE = 14


class FailoverClient(Etcd3Client):
    """:class:`Etcd3Client` over every member listed in a :class:`Backend`."""

    def __init__(self, backend: ep.Backend, timeout: float) -> None:
        first = backend.endpoints[0]
        super().__init__(host=first.host, port=first.port,
                         protocol=backend.protocol, timeout=timeout,
                         api_path=backend.api_path,
                         session=backend.session())
        self.backend = backend
        self._current = 0
        self._moves = threading.Lock()

    # -- where requests go ----------------------------------------------
    @property
    def endpoint(self) -> ep.Endpoint:
        """The member requests go to now."""
        return self.backend.endpoints[self._current]

    @property
    def base_url(self) -> str:
        return self.backend.base_url(self.endpoint)

    def endpoint_urls(self, path: str) -> list[str]:
        """Full URLs of ``path`` on every member, the current one first."""
        n = len(self.backend.endpoints)
        api = self.api_path + path.lstrip('/')
        return [self.backend.base_url(
            self.backend.endpoints[(self._current + i) % n]) + api
            for i in range(n)]

    def url_on(self, endpoint: ep.Endpoint, path: str) -> str:
        """The URL of API ``path`` on one given member."""
        return self.backend.base_url(endpoint) + self.api_path + \
            path.lstrip('/')

    def _move_on(self, index: int, why: str) -> None:
        """Next requests go to the member after ``index`` (if still there)."""
        n = len(self.backend.endpoints)
        if n == 1:
            return
        with self._moves:
            if self._current != index:
                return          # another thread already moved on
            self._current = (index + 1) % n
            nxt = self.backend.endpoints[self._current]
        LOG.warning('etcd %s: %s; using %s', self.backend.endpoints[index],
                    why, nxt)

    def _path(self, url: str) -> str:
        """``url`` relative to the API root, whichever member it names."""
        for endpoint in self.backend.endpoints:
            root = self.backend.base_url(endpoint) + self.api_path
            if url.startswith(root):
                return url[len(root):]
        raise ValueError(f'not an etcd API URL of this client: {url}')

    # -- the one request method of etcd3gw --------------------------------
    def post(self, url: str, *args: t.Any, json: t.Any = None,
             **kwargs: t.Any) -> t.Any:
        path = self._path(url)
        repeatable = path in REPEATABLE
        n = len(self.backend.endpoints)
        start = self._current
        failures: list[str] = []
        last: etcd_exc.Etcd3Exception | None = None
        for step in range(n):
            index = (start + step) % n
            endpoint = self.backend.endpoints[index]
            target = self.backend.base_url(endpoint) + self.api_path + path
            try:
                resp = self.session.post(target, *args, json=json,
                                         timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                delivered = _maybe_delivered(exc)
                last = _translate(exc, endpoint, self.backend)
                why = describe_request_error(exc)
                failures.append(f'{endpoint}: {why}')
                self._move_on(index, why)
                if delivered and not repeatable:
                    raise last from exc
                continue
            error = _error_of(resp)
            if error is None:
                with self._moves:
                    self._current = index
                return resp.json()
            exc, unavailable = error
            if not unavailable:
                raise exc           # etcd refused the request itself
            last = exc
            failures.append(f'{endpoint}: {exc.detail_text}')
            self._move_on(index, 'cannot serve')
            if not repeatable:
                raise exc
        assert last is not None
        if n > 1:
            last = _exc(type(last), 'no member answered: ' +
                        '; '.join(failures))
        raise last


def _maybe_delivered(exc: requests.RequestException) -> bool:
    """False when the request surely never reached etcd."""
    if isinstance(exc, (requests.exceptions.ConnectTimeout,
                        requests.exceptions.SSLError)):
        return False
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        inner = getattr(reason, 'reason', reason)
        return 'NewConnectionError' not in type(inner).__name__ and \
            'Failed to establish a new connection' not in str(exc)
    return True


def describe_request_error(exc: requests.RequestException) -> str:
    """A few words on why a request to an etcd endpoint failed."""
    if isinstance(exc, requests.exceptions.SSLError):
        return 'TLS failed'
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return 'connect timed out'
    if isinstance(exc, requests.exceptions.Timeout):
        return 'timed out'
    if 'Failed to establish a new connection' in str(exc):
        return 'connection refused or unreachable'
    return f'connection failed ({type(exc).__name__})'


def _translate(exc: requests.RequestException, endpoint: ep.Endpoint,
               backend: ep.Backend) -> etcd_exc.Etcd3Exception:
    if isinstance(exc, requests.exceptions.SSLError):
        return _exc(etcd_exc.ConnectionFailedError,
                    ep.tls_failure(backend, endpoint, exc))
    if isinstance(exc, requests.exceptions.Timeout):
        return _exc(etcd_exc.ConnectionTimeoutError,
                    f'{endpoint}: {describe_request_error(exc)}')
    return _exc(etcd_exc.ConnectionFailedError,
                f'{endpoint}: {describe_request_error(exc)}')


def _error_of(resp: requests.Response
              ) -> tuple[etcd_exc.Etcd3Exception, bool] | None:
    """(error, member unavailable?) of an answer, None if it is a result."""
    status = resp.status_code
    try:
        body = resp.json()
    except ValueError:
        body = None
    if status == requests.codes['ok'] and isinstance(body, dict) \
            and 'error' not in body:
        return None
    detail = _error_text(body) or resp.text[:200] or resp.reason
    grpc = _grpc_code(body)
    unavailable = (status in (503, 504, 408) or grpc == GRPC_UNAVAILABLE
                   or body is None)
    if status == requests.codes['ok']:
        cls: type[etcd_exc.Etcd3Exception] = (
            etcd_exc.ConnectionFailedError if unavailable
            else etcd_exc.Etcd3Exception)
        return _exc(cls, f'error in a 200 answer: {detail}'), unavailable
    if status in (408, 504):
        return _exc(etcd_exc.ConnectionTimeoutError, detail), True
    if status == 503:
        return _exc(etcd_exc.ConnectionFailedError, detail), True
    if status == 500:
        return _exc(etcd_exc.InternalServerError, detail), unavailable
    if status == 412:
        return _exc(etcd_exc.PreconditionFailedError, detail), False
    return _exc(etcd_exc.Etcd3Exception, detail), unavailable


def _exc(cls: type[etcd_exc.Etcd3Exception],
         detail: str) -> etcd_exc.Etcd3Exception:
    """An etcd3gw error whose detail_text and str() both say ``detail``."""
    return cls(detail, detail)


def _error_text(body: t.Any) -> str | None:
    if not isinstance(body, dict):
        return None
    error = body.get('error')
    if isinstance(error, dict):
        return str(error.get('message') or error)
    if error:
        return str(body.get('message') or error)
    return None


def _grpc_code(body: t.Any) -> int | None:
    if not isinstance(body, dict):
        return None
    error = body.get('error')
    code = error.get('grpc_code') if isinstance(error, dict) \
        else body.get('code')
    try:
        return int(code) if code is not None else None
    except (TypeError, ValueError):
        return None
