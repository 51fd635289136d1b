"""HTTP calls bounded by one :class:`~freezer_dr.deadline.Deadline`, with
a guard run immediately before a write goes on the wire.

``requests`` timeouts bound each socket read; :class:`BoundedAdapter`
bounds the whole exchange. Inside ``with bounded(deadline, guard):``
every request the thread sends (a keystoneauth re-authentication,
version discovery, then the call itself) shares that deadline; outside,
each request gets a deadline of its own (``default_budget``). Right
before a request's bytes are sent, on a connected socket, the deadline
is checked (past it, the request is abandoned unsent) and, for a write
(any method but GET, HEAD, OPTIONS, and not a Keystone token request),
``guard()`` runs; it raises to stop the write. The socket is shut down
at the deadline, so a slow or dribbling peer ends the call by then with
:class:`DeadlineExceeded`.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import http.client
import typing as t
import urllib.parse

import requests
import requests.adapters
from urllib3 import connection as u3_connection
from urllib3 import connectionpool as u3_pool

from freezer_dr.deadline import Deadline
from freezer_dr.deadline import DeadlineExceeded

SAFE_METHODS = frozenset({'GET', 'HEAD', 'OPTIONS'})


def is_write(method: str | None, url: str | None) -> bool:
    """Whether a request changes something the guard protects.

    Reads and Keystone token requests (``POST .../tokens``, part of a
    re-authentication) are not; anything else is, to fail safe.
    """
    method = (method or '').upper()
    if method in SAFE_METHODS:
        return False
    path = urllib.parse.urlsplit(url or '').path.rstrip('/')
    return not (method == 'POST' and path.endswith('/tokens'))


@dataclasses.dataclass
class Scope:
    """The deadline and guard of the calls a thread makes in a ``with``."""
    deadline: Deadline
    guard: t.Callable[[], None] | None = None
    #: a write has gone on the wire in this scope
    wrote: bool = False
    #: the request being sent is a write (set by the adapter)
    writing: bool = False

    def outcome(self) -> str:
        """How a failed write ended, for error messages."""
        if self.wrote:
            return 'the write was sent, its outcome is unknown'
        return 'abandoned unsent'


_SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    'freezer_dr_http_scope', default=None)


@contextlib.contextmanager
def bounded(deadline: Deadline, guard: t.Callable[[], None] | None = None,
            ) -> t.Iterator[Scope]:
    """Bound every request of this thread by ``deadline`` (see module)."""
    scope = Scope(deadline, guard)
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)


class _BoundedConnectionMixin:
    """Checks the scope, guards writes and watches the socket right
    before the request is written."""

    sock: t.Any

    def _new_conn(self) -> t.Any:
        sock = super()._new_conn()          # type: ignore[misc]
        scope = _SCOPE.get()
        if scope is not None:               # before TLS: the handshake too
            scope.deadline.watch(sock)
            self._watched_by = scope.deadline
        return sock

    def request(self, method: str, url: str, *args: t.Any,
                **kwargs: t.Any) -> None:
        scope = _SCOPE.get()
        if scope is not None:
            self._before_send(scope, method, url)
        super().request(method, url, *args, **kwargs)  # type: ignore[misc]

    def _before_send(self, scope: Scope, method: str, url: str) -> None:
        what = f'{method} {_path(url)}'
        deadline = scope.deadline
        if self.sock is None:
            self.connect()                  # type: ignore[attr-defined]
        if getattr(self, '_watched_by', None) is not deadline:
            deadline.watch(self.sock)
            self._watched_by = deadline
        deadline.check(what)
        if scope.writing:
            if scope.guard is not None:
                scope.guard()
            deadline.check(what)
            scope.wrote = True


class _HTTPConnection(_BoundedConnectionMixin, u3_connection.HTTPConnection):
    pass


class _HTTPSConnection(_BoundedConnectionMixin,
                       u3_connection.HTTPSConnection):
    pass


class _HTTPPool(u3_pool.HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(u3_pool.HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


POOLS = {'http': _HTTPPool, 'https': _HTTPSPool}


class BoundedAdapter(requests.adapters.HTTPAdapter):
    """A requests adapter whose every exchange ends by a deadline.

    ``default_budget`` (seconds) bounds a request sent outside
    :func:`bounded`; None leaves such requests to requests' timeouts.
    """

    def __init__(self, default_budget: float | None = None,
                 **kwargs: t.Any) -> None:
        self.default_budget = default_budget
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(POOLS)

    def proxy_manager_for(self, proxy: str, **kwargs: t.Any) -> t.Any:
        manager = super().proxy_manager_for(proxy, **kwargs)
        manager.pool_classes_by_scheme = dict(POOLS)
        return manager

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: t.Any = None, *args: t.Any,
             **kwargs: t.Any) -> requests.Response:
        scope = _SCOPE.get()
        if scope is None and self.default_budget is None:
            return super().send(request, stream, timeout, *args, **kwargs)
        with contextlib.ExitStack() as stack:
            if scope is None:
                deadline = stack.enter_context(Deadline(self.default_budget))
                scope = stack.enter_context(bounded(deadline))
            return self._send_bounded(scope, request, stream, timeout,
                                      *args, **kwargs)

    def _send_bounded(self, scope: Scope, request: requests.PreparedRequest,
                      stream: bool, timeout: t.Any, *args: t.Any,
                      **kwargs: t.Any) -> requests.Response:
        deadline = scope.deadline
        what = f'{request.method} {_path(request.url)}'
        connect, read = (timeout if isinstance(timeout, tuple)
                         else (timeout, timeout))
        bounded_timeout = (deadline.bound(connect, what),
                           deadline.bound(read, what))
        scope.writing = is_write(request.method, request.url)
        try:
            response = super().send(request, stream, bounded_timeout,
                                    *args, **kwargs)
            if not stream:
                _ = response.content        # the body, under the watch too
            return response
        except DeadlineExceeded:
            raise
        except (requests.RequestException, OSError,
                http.client.HTTPException) as error:
            if deadline.expired:
                raise DeadlineExceeded(
                    f'{what}: timed out, no complete answer within '
                    f'{deadline.seconds:g} s') from error
            raise


def _path(url: str | None) -> str:
    """The URL without its query (which may carry a token)."""
    parts = urllib.parse.urlsplit(url or '')
    return f'{parts.scheme}://{parts.netloc.rpartition("@")[2]}{parts.path}'
