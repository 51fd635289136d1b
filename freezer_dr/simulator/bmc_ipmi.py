"""IPMI side of the simulated BMCs: pyghmi server classes with fixes.

Subclasses of pyghmi's server side (``pyghmi.ipmi.bmc.Bmc`` and its
``ServerSession``) that

- refuse RMCP+ proposals other than cipher suite 3 (HMAC-SHA1, SHA1-96,
  AES-CBC-128) with status 0x11, so pyghmi's client falls back to suite 3
  instead of crashing on the suite 17 answer it never asked for;
- answer RAKP1 for an unknown user with RAKP2 status 0x0D, so clients fail
  at once instead of hanging;
- read their sockets with ``MSG_DONTWAIT`` (:func:`use_nonblocking_reads`),
  so the IO thread never blocks in ``recvfrom`` while another thread has
  flipped the shared socket back to blocking for a send;
- apply per-BMC faults (drop every packet, delay every reply, accept "off"
  without powering off, changed password) and log every power command.

pyghmi's files are not modified; the only process-wide change is
:func:`use_nonblocking_reads`, meant for the BMC process itself.
"""
from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import socket
import threading
import time
import typing as t
import urllib.error
import urllib.request

import pyghmi.ipmi.bmc as pyghmi_bmc
import pyghmi.ipmi.private.constants as ipmi_constants
import pyghmi.ipmi.private.serversession as serversession
import pyghmi.ipmi.private.session as ipmi_session
from oslo_log import log as logging

LOG = logging.getLogger(__name__)

FAULT_MODES = ('none', 'unreachable', 'slow', 'stuck', 'wrong-password')

#: chassis control directive -> command name in the log
CHASSIS_COMMANDS = {0: 'off', 1: 'on', 2: 'cycle', 3: 'reset', 5: 'soft'}

RMCP_NO_CIPHER_SUITE_MATCH = 0x11
RMCP_UNAUTHORIZED_NAME = 0x0D
IPMI_UNSPECIFIED_ERROR = 0xFF
IPMI_INVALID_DATA = 0xCC


def use_nonblocking_reads() -> None:
    """Make pyghmi's IO loop read with MSG_DONTWAIT (process-wide)."""

    def recvfrom(mysocket: socket.socket, size: int):
        try:
            return mysocket.recvfrom(size, socket.MSG_DONTWAIT)
        except OSError:
            return None

    ipmi_session._io_recvfrom = recvfrom


class PowerUnavailable(Exception):
    """The node's power could not be read or switched."""


class PowerSwitch(t.Protocol):
    """Ground truth of one node's power: 'on' or 'off'."""

    def get(self) -> str: ...

    def set(self, power: str) -> None: ...


class MemoryPower:
    """Power kept in memory (fencer tests without a cloud)."""

    def __init__(self, power: str = 'on') -> None:
        self._power = power

    def get(self) -> str:
        return self._power

    def set(self, power: str) -> None:
        self._power = power


class HttpPower:
    """Power read and switched through the simulator's HTTP endpoint."""

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout

    def _call(self, body: bytes | None) -> dict[str, t.Any]:
        req = urllib.request.Request(
            self.url, data=body, method='POST' if body else 'GET',
            headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as rsp:
                return json.loads(rsp.read() or b'{}')
        except (OSError, ValueError) as exc:
            raise PowerUnavailable(f'{self.url}: {exc}') from exc

    def get(self) -> str:
        power = self._call(None).get('power')
        if power not in ('on', 'off'):
            raise PowerUnavailable(f'{self.url}: bad power {power!r}')
        return power

    def set(self, power: str) -> None:
        self._call(json.dumps({'power': power}).encode())


@dataclasses.dataclass(frozen=True)
class Fault:
    """A fault injected into one BMC."""
    mode: str = 'none'
    delay: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in FAULT_MODES:
            raise ValueError(f'unknown fault mode {self.mode!r}; '
                             f'one of {", ".join(FAULT_MODES)}')
        if self.delay < 0:
            raise ValueError('delay must be >= 0')


def switch_power(power: PowerSwitch, fault: Fault, command: str) -> str:
    """Apply a power command as a BMC with ``fault`` would; return the
    node's power after it (a ``stuck`` BMC accepts "off" and stays on).
    """
    before = power.get()
    if fault.mode == 'stuck' and command != 'on':
        return before
    if command == 'on':
        power.set('on')
    elif command in ('off', 'soft'):
        power.set('off')
    elif command == 'cycle' or (command == 'reset' and before == 'on'):
        power.set('off')
        power.set('on')
    return power.get()


class PowerLog:
    """Append-only JSONL of power commands, flushed per line."""

    def __init__(self, path: str) -> None:
        self._file = open(path, 'a', encoding='utf-8')
        self._lock = threading.Lock()

    def write(self, host: str, command: str, result: str,
              power_after: str) -> None:
        line = json.dumps({'t': time.time(), 'host': host,
                           'command': command, 'result': result,
                           'power_after': power_after})
        with self._lock:
            self._file.write(line + '\n')
            self._file.flush()

    def close(self) -> None:
        self._file.close()


class _FaultGate:
    """Mixin: route incoming packets through the owning BMC's fault."""

    def _gate_bmc(self) -> SimulatedBmc:
        raise NotImplementedError

    def process_pktqueue(self) -> None:
        if not self._gate_bmc().hold_packets(self):
            self.process_now()

    def process_now(self) -> None:
        """Handle the queued packets. One that pyghmi's server cannot
        handle (a retransmit released late by a slow fault, for a session
        already gone or in another state) is dropped, as a real BMC drops
        it, instead of ending the whole BMC process."""
        try:
            super().process_pktqueue()
        except Exception:       # noqa: BLE001 - pyghmi leaks internals
            LOG.warning('%r: dropped a packet it could not handle', self,
                        exc_info=True)


class FencingServerSession(_FaultGate, serversession.ServerSession):
    """One client's RMCP+ session, with the cipher and user fixes."""

    def _gate_bmc(self) -> SimulatedBmc:
        return self.bmc

    def sessionless_data(self, data, sockaddr) -> None:
        """A packet queued for this session after its client's address
        left pyghmi's session table (the session ended, and the client
        reuses its socket for a new login): pyghmi hands it to the
        session's ``sessionless_data``, which only the server has. Give it
        to the server, which answers it as a new client's packet; dropped,
        the client's login would go unanswered."""
        self.bmc.sessionless_data(data, sockaddr)

    def _refusal(self, tag: int, status: int) -> bytearray:
        return bytearray([tag, status, 0, 0]) + self.clientsessionid

    def create_open_session_response(self, request):
        self.clientsessionid = request[4:8]
        algorithms = (request[12], request[20], request[28]) \
            if len(request) >= 32 else None
        if algorithms != (1, 1, 1):   # suite 3: SHA1, SHA1-96, AES-128
            return self._refusal(request[0], RMCP_NO_CIPHER_SUITE_MATCH)
        return super().create_open_session_response(request)

    def _got_rakp1(self, data):
        namelen = data[27] if len(data) > 27 else 0
        name = bytes(data[28:28 + namelen]).decode('utf-8', 'replace')
        if not namelen or self.authdata.get(name) is None:
            self.send_payload(self._refusal(data[0], RMCP_UNAUTHORIZED_NAME),
                              ipmi_constants.payload_types['rakp2'],
                              retry=False)
            return
        super()._got_rakp1(data)


class _Credentials:
    """pyghmi's authdata: the BMC's one user, honouring wrong-password."""

    def __init__(self, bmc: SimulatedBmc) -> None:
        self._bmc = bmc

    def get(self, username: str, default=None):
        if username != self._bmc.username:
            return default
        if self._bmc.fault.mode == 'wrong-password':
            return self._bmc.password + '/changed'
        return self._bmc.password


class SimulatedBmc(_FaultGate, pyghmi_bmc.Bmc):
    """One node's BMC on its own UDP port."""

    kind = 'ipmi'

    _sequence = itertools.count()

    def __init__(self, host: str, address: str, port: int, username: str,
                 password: str, power: PowerSwitch, log: PowerLog) -> None:
        self.host = host
        self.username = username
        self.password = password
        self.power = power
        self.log = log
        self.fault = Fault()
        self._delayed: list[tuple[float, int, t.Any, t.Any]] = []
        super().__init__(_Credentials(self), port=port, address=address)
        self.port = self.serversocket.getsockname()[1]
        self.address = address

    def __repr__(self) -> str:
        return (f'SimulatedBmc(host={self.host!r}, '
                f'address={self.address!r}, port={self.port})')

    def _gate_bmc(self) -> SimulatedBmc:
        return self

    def sessionless_data(self, data, sockaddr):
        data = bytearray(data)
        if (len(data) >= 22 and data[0] == 6 and data[2:4] == b'\xff\x07'
                and data[4] == 6 and data[5] == 16):
            FencingServerSession(self.authdata, self.kg, sockaddr,
                                 self.serversocket, data[16:], self.uuid,
                                 bmc=self)
            return
        super().sessionless_data(data, sockaddr)

    # fault gate -----------------------------------------------------
    def hold_packets(self, target: _FaultGate) -> bool:
        """Drop or delay ``target``'s queued packets; True if it did."""
        fault = self.fault
        if fault.mode == 'unreachable':
            target.pktqueue.clear()
            return True
        if fault.mode == 'slow' and fault.delay > 0:
            due = time.monotonic() + fault.delay
            while target.pktqueue:
                heapq.heappush(self._delayed, (
                    due, next(self._sequence), target,
                    target.pktqueue.popleft()))
            return True
        return False

    def release_due(self, now: float) -> None:
        """Process delayed packets whose time has come."""
        while self._delayed and self._delayed[0][0] <= now:
            _due, _seq, target, pkt = heapq.heappop(self._delayed)
            if self.fault.mode == 'unreachable':
                continue
            target.pktqueue.append(pkt)
            target.process_now()

    # power ----------------------------------------------------------
    def get_chassis_status(self, session):
        try:
            power = self.power.get()
        except PowerUnavailable:
            self.log.write(self.host, 'status', 'error', 'unknown')
            return session.send_ipmi_response(code=IPMI_UNSPECIFIED_ERROR)
        self.log.write(self.host, 'status', 'ok', power)
        session.send_ipmi_response(data=[1 if power == 'on' else 0, 0, 0])

    def control_chassis(self, request, session):
        data = request.get('data') or [None]
        command = CHASSIS_COMMANDS.get(data[0])
        if command is None:
            return session.send_ipmi_response(code=IPMI_INVALID_DATA)
        try:
            power = self._switch(command)
        except PowerUnavailable:
            self.log.write(self.host, command, 'error', 'unknown')
            return session.send_ipmi_response(code=IPMI_UNSPECIFIED_ERROR)
        self.log.write(self.host, command, 'ok', power)
        session.send_ipmi_response()

    def _switch(self, command: str) -> str:
        return switch_power(self.power, self.fault, command)

    def close(self) -> None:
        """Stop serving this BMC's port."""
        ipmi_session.Session.bmc_handlers.pop(self.serversocket, None)
        if self.serversocket in ipmi_session.iosockets:
            ipmi_session.iosockets.remove(self.serversocket)
        self.serversocket.close()
