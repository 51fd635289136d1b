"""Redfish fencing with sushy: ComputerSystem.Reset, then PowerState
read back until Off.

Each operation (one fence, one power read) uses its own sushy connection
with HTTP basic authentication (no Redfish session to leak on a BMC when
a call is abandoned). Every request goes through :class:`_GatedAdapter`:
a POST (the reset) first passes the call's gate in the worker thread, so
neither an abandoned call nor sushy's own retries send a power command
after the caller gave up, after the call deadline or without the lease.
"""
from __future__ import annotations

import dataclasses
import os
import socket
import ssl
import typing as t

import requests
import sushy
from requests import adapters as requests_adapters
from sushy import auth as sushy_auth
from sushy import connector as sushy_connector
from sushy import exceptions as sushy_exc
from sushy.resources.system import system as sushy_system

from freezer_dr.exceptions import FenceFailed
from freezer_dr.fencers.base import PowerSwitchFencer
from freezer_dr.fencers.context import CallGate
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import Guard
from freezer_dr.fencers.context import Secret
from freezer_dr.model import PowerState

RESET_TYPES = {'soft': sushy.ResetType.GRACEFUL_SHUTDOWN,
               'off': sushy.ResetType.FORCE_OFF}
#: PowerState -> ours: only Off is off; anything drawing power is on
POWER = {sushy.PowerState.OFF: PowerState.OFF.value,
         sushy.PowerState.ON: PowerState.ON.value,
         sushy.PowerState.POWERING_ON: PowerState.ON.value,
         sushy.PowerState.POWERING_OFF: PowerState.ON.value,
         sushy.PowerState.PAUSED: PowerState.ON.value}


class _GatedAdapter(requests_adapters.HTTPAdapter):
    """requests' adapter (no retries of its own) that checks ``gate``
    right before sending any request that is not a read."""

    def __init__(self) -> None:
        super().__init__(max_retries=0)
        self.gate: CallGate | None = None

    def send(self, request: requests.PreparedRequest,
             *args: t.Any, **kwargs: t.Any) -> requests.Response:
        gate = self.gate
        if gate is not None and request.method not in ('GET', 'HEAD'):
            gate.check()
        return super().send(request, *args, **kwargs)


@dataclasses.dataclass
class _Connection:
    """One operation's sushy root, system and gated adapter."""
    root: sushy.Sushy
    system: sushy_system.System
    adapter: _GatedAdapter


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (urllib3 ``reason``, cause, context)."""
    seen: list[BaseException] = []
    todo: list[t.Any] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or item in seen:
            continue
        seen.append(item)
        todo += [getattr(item, 'reason', None), item.__cause__,
                 item.__context__, *item.args]
    return seen


def _transport_reason(exc: BaseException) -> str:
    """Name a connection failure: TLS, refused, timeout..."""
    causes = _causes(exc)
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (f'TLS certificate verification failed: '
                    f'{cause.verify_message}')
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            return f'TLS failure: {cause.reason or cause}'
        if isinstance(cause, ConnectionRefusedError):
            return 'connection refused'
        if isinstance(cause, (socket.timeout, TimeoutError,
                              requests.Timeout)):
            return 'no answer (timeout)'
        if isinstance(cause, socket.gaierror):
            return f'cannot resolve the address: {cause.strerror}'
    return str(causes[-1])


def _flag(value: t.Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f'{name} must be true or false')
    return value


class RedfishFencer(PowerSwitchFencer):
    """Power a node off through its Redfish BMC and read the state back."""

    driver = 'redfish'
    required = ('address', 'username', 'password')
    optional = ('system_id', 'verify_tls', 'ca_file')
    secrets = ('password',)
    paths = ('ca_file',)

    def __init__(self, host: str, params: dict[str, t.Any],
                 context: FenceContext | None = None) -> None:
        super().__init__(host, params)
        self.address = str(params['address']).rstrip('/')
        if not self.address.startswith(('https://', 'http://')):
            raise ValueError(f'address {self.address!r} must be a URL '
                             f'(https://BMC)')
        self.username = str(params['username'])
        password = params['password']
        self._password = (password if isinstance(password, Secret)
                          else Secret(str(password)))
        system_id = params.get('system_id')
        self.system_id = None if system_id is None else str(system_id)
        self.verify_tls = _flag(params.get('verify_tls', True), 'verify_tls')
        self.ca_file = params.get('ca_file')
        if self.ca_file is not None and not os.access(str(self.ca_file),
                                                      os.R_OK):
            raise ValueError(f'ca_file {self.ca_file}: cannot read it')
        self.settings = (context or FenceContext()).settings
        self.where = f'Redfish BMC {self.address}'

    def __repr__(self) -> str:
        return (f'RedfishFencer(host={self.host!r}, '
                f'address={self.address!r}, system_id={self.system_id!r})')

    @property
    def _verify(self) -> bool | str:
        if not self.verify_tls:
            return False
        return str(self.ca_file) if self.ca_file else True

    def _failure(self, exc: Exception) -> str | None:
        if isinstance(exc, sushy_exc.AccessError):
            return (f'authentication refused (HTTP {exc.status_code}): '
                    f'check username and password')
        if isinstance(exc, sushy_exc.ResourceNotFoundError):
            return f'not found (HTTP 404): {exc}'
        if isinstance(exc, sushy_exc.HTTPError):
            return f'HTTP {exc.status_code}: {exc.detail or exc.code}'
        if isinstance(exc, (sushy_exc.ConnectionError,
                            requests.RequestException)):
            return _transport_reason(exc)
        if isinstance(exc, sushy_exc.SushyError):
            return str(exc)
        return None

    # -- hooks -------------------------------------------------------------
    def _connect(self, gate: CallGate) -> _Connection:
        adapter = _GatedAdapter()
        timeout = self.settings.call_timeout
        # server_side_retries=1: one attempt per request (sushy would
        # otherwise resend a timed-out POST 3 times, 2 s apart)
        conn = sushy_connector.Connector(
            self.address, verify=self._verify, server_side_retries=1,
            server_side_retries_delay=0, default_request_timeout=timeout,
            connect_timeout=timeout)
        for prefix in ('https://', 'http://'):
            conn._session.mount(prefix, adapter)
        root = sushy.Sushy(self.address, connector=conn,
                           auth=sushy_auth.BasicAuth(
                               self.username, self._password.reveal()))
        system = root.get_system(self._system_path(root))
        return _Connection(root, system, adapter)

    def _system_path(self, root: sushy.Sushy) -> str:
        if self.system_id is not None:
            if self.system_id.startswith('/'):
                return self.system_id
            return f'{root._systems_path.rstrip("/")}/{self.system_id}'
        members = sorted(root.get_system_collection().members_identities)
        if len(members) != 1:
            listed = ', '.join(m.rsplit('/', 1)[-1] for m in members)
            raise FenceFailed(
                f'{self.host}: {self.where}: {len(members)} systems '
                f'({listed or "none"}): set system_id for this host in '
                f'the fencing inventory')
        return members[0]

    def _open(self, deadline: float) -> _Connection:
        return self._call('connect', self._connect, deadline,
                          orphan=self._close)

    def _read(self, conn: _Connection, deadline: float) -> str:
        def read(_gate: CallGate) -> str:
            conn.system.refresh(force=True)
            return POWER.get(conn.system.power_state,
                             PowerState.UNKNOWN.value)
        return self._call('power status', read, deadline)

    def _has_soft_shutdown(self, conn: _Connection) -> bool:
        return (RESET_TYPES['soft']
                in conn.system.get_allowed_reset_system_values())

    def _send(self, conn: _Connection, command: str, deadline: float,
              guard: Guard) -> dict[str, t.Any]:
        reset_type = RESET_TYPES[command]

        def reset(gate: CallGate) -> None:
            conn.adapter.gate = gate
            try:
                conn.system.reset_system(reset_type)
            finally:
                conn.adapter.gate = None

        self._call(f'reset {reset_type.value}', reset, deadline, guard)
        return {'reset_type': reset_type.value}

    def _close(self, conn: _Connection) -> None:
        conn.root._conn.close()
