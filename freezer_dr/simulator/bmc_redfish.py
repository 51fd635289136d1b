"""Redfish side of the simulated BMCs: sushy-tools' emulator over HTTPS.

Each Redfish BMC is its own HTTPS port serving sushy-tools' emulator WSGI
application (``sushy_tools.emulator.main.app``) with a systems driver of
ours, :class:`SimSystemsDriver`: one system per BMC, whose power is the
simulated host's (the same :class:`bmc_ipmi.PowerSwitch` as the IPMI
BMCs) and whose every power read and reset is written to the same power
log, with the same fields and command names (``status``, ``off``,
``soft``, ``on``, ``reset``, ``cycle``).

sushy-tools serves one application per process; the BMC a request came
in on is put into the WSGI environ (``freezer_dr.bmc``) and the driver
answers for that BMC only. Faults as for IPMI: ``unreachable`` (accept
the TCP connection, never answer), ``slow`` (answer ``delay`` s late),
``stuck`` (reset accepted, power unchanged), ``wrong-password`` (HTTP 401).
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import socketserver
import ssl
import threading
import time
import typing as t
import uuid
from wsgiref.simple_server import WSGIRequestHandler
from wsgiref.simple_server import WSGIServer

import flask
from oslo_log import log as logging
from sushy_tools import error as sushy_error
from sushy_tools.emulator import main as emulator
from sushy_tools.emulator.resources.systems import base as systems_base

from freezer_dr.simulator import bmc_ipmi

LOG = logging.getLogger(__name__)

ENVIRON_KEY = 'freezer_dr.bmc'
#: Redfish ResetType -> command name in the power log
RESET_COMMANDS = {'On': 'on', 'ForceOn': 'on', 'ForceOff': 'off',
                  'GracefulShutdown': 'soft', 'ForceRestart': 'reset',
                  'GracefulRestart': 'reset', 'PowerCycle': 'cycle',
                  'Nmi': 'nmi'}
#: paths readable without credentials (as sushy-tools' own auth does)
PUBLIC_PATHS = frozenset(['', 'redfish', 'redfish/v1'])
UNREACHABLE_HOLD = 300.0
UUID_NAMESPACE = uuid.UUID('6f1b1c7e-3c1e-4b9a-9a52-6a0d3c1f0b6e')


class RedfishBmc:
    """One node's Redfish BMC on its own HTTPS port."""

    kind = 'redfish'

    def __init__(self, host: str, address: str, port: int, username: str,
                 password: str, power: bmc_ipmi.PowerSwitch,
                 log: bmc_ipmi.PowerLog, tls: ssl.SSLContext) -> None:
        self.host = host
        self.address = address
        self.username = username
        self.password = password
        self.power = power
        self.log = log
        self.fault = bmc_ipmi.Fault()
        self.system_id = str(uuid.uuid5(UUID_NAMESPACE, host))
        self._server = _HttpsServer((address, port), self, tls)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={'poll_interval': 0.05},
            name=f'redfish-{host}', daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return (f'RedfishBmc(host={self.host!r}, address={self.address!r}, '
                f'port={self.port})')

    def release_due(self, now: float) -> None:
        """Nothing queued here (the IPMI BMCs' event-loop hook)."""

    def authorized(self, environ: dict[str, t.Any]) -> bool:
        """HTTP basic credentials, honouring ``wrong-password``."""
        header = environ.get('HTTP_AUTHORIZATION', '')
        scheme, _, token = header.partition(' ')
        if scheme.lower() != 'basic':
            return False
        try:
            user, _, password = base64.b64decode(token).decode().partition(
                ':')
        except (binascii.Error, UnicodeDecodeError):
            return False
        expected = self.password
        if self.fault.mode == 'wrong-password':
            expected += '/changed'
        return (user == self.username
                and hmac.compare_digest(password.encode(), expected.encode()))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: t.Any) -> None:
        LOG.debug('redfish: ' + format, *args)


class _HttpsServer(socketserver.ThreadingMixIn, WSGIServer):
    """A threaded WSGI server for one BMC; TLS is negotiated in the
    connection's own thread, so an unreachable BMC holds only that one."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], bmc: RedfishBmc,
                 tls: ssl.SSLContext) -> None:
        self.bmc = bmc
        self.tls = tls
        super().__init__(address, _QuietHandler)
        self.set_app(_BmcApp(bmc))

    def finish_request(self, request: t.Any, client_address: t.Any) -> None:
        if self.bmc.fault.mode == 'unreachable':
            held_until = time.monotonic() + UNREACHABLE_HOLD
            while (self.bmc.fault.mode == 'unreachable'
                   and time.monotonic() < held_until):
                time.sleep(0.05)
            return                       # closed without an answer
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            LOG.debug('redfish %s: TLS handshake failed: %s', self.bmc.host,
                      exc)
            return
        try:
            super().finish_request(conn, client_address)
        finally:
            conn.close()

    def handle_error(self, request: t.Any, client_address: t.Any) -> None:
        LOG.debug('redfish %s: connection from %s failed', self.bmc.host,
                  client_address, exc_info=True)


class _BmcApp:
    """WSGI wrapper: faults, basic auth, then sushy-tools' emulator."""

    def __init__(self, bmc: RedfishBmc) -> None:
        self.bmc = bmc

    def __call__(self, environ: dict[str, t.Any],
                 start_response: t.Callable[..., t.Any]) -> t.Iterable[bytes]:
        fault = self.bmc.fault
        if fault.mode == 'slow' and fault.delay > 0:
            time.sleep(fault.delay)
        path = environ.get('PATH_INFO', '').strip('/')
        if path not in PUBLIC_PATHS and not self.bmc.authorized(environ):
            body = json.dumps({'error': {
                'code': 'Base.1.0.GeneralError',
                'message': 'Authentication failed'}}).encode()
            start_response('401 Unauthorized', [
                ('Content-Type', 'application/json'),
                ('Content-Length', str(len(body))),
                ('WWW-Authenticate', 'Basic realm="redfish"')])
            return [body]
        environ[ENVIRON_KEY] = self.bmc
        return emulator.app(environ, start_response)


def _bmc() -> RedfishBmc:
    return flask.request.environ[ENVIRON_KEY]


class SimSystemsDriver(systems_base.AbstractSystemsDriver):
    """sushy-tools systems driver: the one simulated host of the BMC that
    received the request."""

    @property
    def driver(self) -> str:
        return '<freezer-dr simulator>'

    @property
    def systems(self) -> list[str]:
        return [_bmc().system_id]

    def _check(self, identity: str) -> RedfishBmc:
        bmc = _bmc()
        if identity == bmc.host:
            raise sushy_error.AliasAccessError(bmc.system_id)
        if identity != bmc.system_id:
            raise sushy_error.NotFound(f'System {identity} was not found')
        return bmc

    def uuid(self, identity: str) -> str:
        return self._check(identity).system_id

    def name(self, identity: str) -> str:
        return self._check(identity).host

    def get_power_state(self, identity: str) -> str:
        bmc = self._check(identity)
        try:
            power = bmc.power.get()
        except bmc_ipmi.PowerUnavailable:
            bmc.log.write(bmc.host, 'status', 'error', 'unknown')
            raise sushy_error.FishyError('Power state unavailable')
        bmc.log.write(bmc.host, 'status', 'ok', power)
        return 'On' if power == 'on' else 'Off'

    def set_power_state(self, identity: str, state: str) -> None:
        bmc = self._check(identity)
        command = RESET_COMMANDS.get(state)
        if command is None:
            raise sushy_error.BadRequest(f'Unknown ResetType {state!r}')
        if command == 'nmi':
            bmc.log.write(bmc.host, command, 'ok', bmc.power.get())
            return
        try:
            power = bmc_ipmi.switch_power(bmc.power, bmc.fault, command)
        except bmc_ipmi.PowerUnavailable:
            bmc.log.write(bmc.host, command, 'error', 'unknown')
            raise sushy_error.FishyError('Power switch unavailable')
        bmc.log.write(bmc.host, command, 'ok', power)

    def get_boot_device(self, identity: str) -> str:
        self._check(identity)
        return 'Hdd'

    def set_boot_device(self, identity: str, boot_source: str) -> None:
        raise sushy_error.NotSupportedError()

    def get_nics(self, identity: str) -> list[dict[str, str]]:
        return []


class _SimEmulator(emulator.Application):
    """sushy-tools' Application with :class:`SimSystemsDriver` as its
    systems driver (its own choice is among fake, libvirt, nova, ironic)."""

    _sim_systems = SimSystemsDriver()

    @property
    def systems(self) -> SimSystemsDriver:
        return self._sim_systems


def use_sim_driver() -> None:
    """Point sushy-tools' one application at the simulated hosts."""
    # the routes are registered on this very instance; only its class
    # (hence the ``systems`` property) changes
    emulator.app.__class__ = _SimEmulator
    emulator.app.configure(extra_config={
        'SUSHY_EMULATOR_FEATURE_SET': 'minimum'})
