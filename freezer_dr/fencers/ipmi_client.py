"""pyghmi's IPMI client as fencing needs it: a session of our own per
operation, no lost wake-ups, and power commands that pass a gate.

Five upstream behaviours of pyghmi (1.6.x, ``pyghmi.ipmi.private.session``)
are worked around here:

- **Lost wake-up.** A caller sends its request, then registers its wait
  with the shared IO thread (``_io_wait`` appends to ``ioqueue``). On
  loopback the answer often arrives in between: the IO thread reads it,
  queues it on the session (``pktqueue`` / ``sessionqueue``) and finds
  nobody waiting; the caller then registers and sleeps until its retry
  timer (0.5-1.7 s), although its answer is already queued, and may even
  retransmit the request. :func:`install_pyghmi_fixes` replaces
  ``_io_wait`` with the same function plus one check after registering:
  if the packet is already queued, do not sleep. (ipmitool has no shared
  IO thread, hence no stall.)
- **Lock-order inversion.** ``send_payload`` holds ``KEEPALIVE_SESSIONS``
  and takes ``WAITING_SESSIONS``; ``awaitresponse`` holds
  ``WAITING_SESSIONS`` and, retransmitting, takes ``KEEPALIVE_SESSIONS``.
  Two threads doing IPMI at once deadlock, and every later call of the
  process waits forever (seen in CI as logins with no answer).
  :func:`install_pyghmi_fixes` makes the two locks one.
- **Blocking flag flipped under the IO thread.** Sessions share UDP
  sockets. ``_io_sendto`` sets a socket blocking before it sends, while
  the IO thread sets it non-blocking and then reads it until empty. A send
  between those two steps leaves the IO thread blocked in ``recvfrom``
  until a packet arrives on that socket, which never happens when the
  send went to a BMC that does not answer: every IPMI call of the process
  then waits forever. :func:`install_pyghmi_fixes` swaps both for
  versions that never touch the flag (the read asks for ``MSG_DONTWAIT``).
- **An IO thread that can die.** The IO thread's loop has no exception
  handling, and its read loop indexes the session table while ``logout``
  deletes from it (a KeyError when a Close Session reply comes in at
  that moment). Waiters then sleep forever (``evt.wait()`` without a
  timeout). The read loop here looks entries up without raising, and a
  waiter wakes at its own deadline and raises once the IO thread is dead:
  fencing fails, named, instead of every later call hanging.
- **Shared sessions and unbounded retransmission.** ``Session.__new__``
  hands every caller with the same BMC and credentials one cached
  session, and a session retransmits its last payload (and, after a
  re-login, sends it again) from whichever thread runs the event loop.
  :class:`FencingSession` is never shared, and while a power command is
  outstanding every transmission first passes the gate: after the caller
  abandoned the call, after its deadline or once the guard says the lease
  is gone, nothing more is sent. Transmissions happen inside pyghmi's
  session lock, so there the gate is checked without waiting (a guard
  that waits for a keepalive would stall every IPMI call of the process);
  the waiting check is made once before the command, outside the lock.
"""
from __future__ import annotations

import socket
import threading
import typing as t

from pyghmi import exceptions as pyghmi_exc
from pyghmi.ipmi.private import session as pyghmi_session
from pyghmi.ipmi.private import util as pyghmi_util

from freezer_dr.fencers.context import CallGate

CHASSIS_NETFN = 0
GET_CHASSIS_STATUS = 1
CHASSIS_CONTROL = 2
#: chassis control directives (IPMI 2.0 table 28-4)
DIRECTIVES = {'off': 0, 'soft': 5}

_install_lock = threading.Lock()
_installed = False


def install_pyghmi_fixes() -> None:
    """Swap pyghmi's ``_io_wait`` for :func:`_prompt_io_wait`, its socket
    reads and sends for ones that leave the blocking flag alone, and its
    two session-table locks for one (once)."""
    global _installed
    with _install_lock:
        if not _installed:
            pyghmi_session._io_wait = _prompt_io_wait
            pyghmi_session._io_sendto = _send_datagram
            pyghmi_session._io_recvfrom = _receive_datagram
            pyghmi_session._io_graball = _read_all
            # created lazily by the first session, check-then-set: two
            # first sessions at once could get a lock each
            FencingSession.socketchecking = threading.Lock()
            # pyghmi takes its two locks in both orders: send_payload holds
            # KEEPALIVE_SESSIONS and _xmit_packet then takes
            # WAITING_SESSIONS, while awaitresponse holds WAITING_SESSIONS
            # and its retransmit (_timedout -> send_payload) then takes
            # KEEPALIVE_SESSIONS. Two threads doing IPMI at once (a fence
            # and a readiness check) deadlock, and every later IPMI call
            # of the process waits forever. One reentrant lock for both
            # has no order to get wrong.
            pyghmi_session.WAITING_SESSIONS = \
                pyghmi_session.KEEPALIVE_SESSIONS
            _installed = True


def _send_datagram(sock: socket.socket, packet: bytes,
                   sockaddr: t.Any) -> None:
    """pyghmi's ``_io_sendto`` without ``setblocking(1)``: a lost datagram
    is retransmitted, a blocked IO thread is not."""
    try:
        sock.sendto(packet, sockaddr)
    except OSError:
        pass


def _receive_datagram(sock: socket.socket,
                      size: int) -> tuple[bytes, t.Any] | None:
    """pyghmi's ``_io_recvfrom``: the next datagram, or None when none is
    queued, whatever the socket's blocking flag says."""
    try:
        return sock.recvfrom(size, socket.MSG_DONTWAIT)
    except OSError:
        return None


def _read_all(sockets: list[socket.socket],
              waiters: dict[t.Any, list]) -> list[t.Any]:
    """pyghmi's ``_io_graball`` (the IO thread's read of every socket
    until empty), with table lookups that cannot raise: a session logged
    out while its last reply came in is a packet for nobody."""
    handlers = pyghmi_session.Session.bmc_handlers
    sockaddrs = []
    for sock in sockets:
        while (received := pyghmi_session._io_recvfrom(sock, 3000)):
            data, sockaddr = received
            if len(data) < 4:          # a wake-up of the IO thread
                continue
            try:
                myport = sock.getsockname()[1]
            except OSError:
                break
            relsession = (handlers.get(sockaddr) or {}).get(myport)
            rdata: tuple = (data, sockaddr, sock, True)
            if relsession is None:     # pyghmi is the BMC: sessionless
                relsession = (handlers.get(sock) or {}).get(0)
                rdata = (data, sockaddr, sock, False)
            if relsession is not None:
                relsession.pktqueue.append(rdata)
                pyghmi_session.sessionqueue.append(relsession)
            for waiter in waiters.pop(sockaddr, ()):
                waiter[1].set()
            sockaddrs.append(sockaddr)
    return sockaddrs


def _already_queued(myaddr: t.Any) -> bool:
    """Whether what a waiter on ``myaddr`` waits for has arrived."""
    if myaddr is None:
        return bool(pyghmi_session.sessionqueue)
    handlers = pyghmi_session.Session.bmc_handlers.get(myaddr) or {}
    return any(session.pktqueue for session in tuple(handlers.values()))


def _prompt_io_wait(timeout: float, myaddr: t.Any = None,
                    evq: t.Any = None) -> None:
    """pyghmi 1.6's ``_io_wait``, plus: do not sleep when the packet came
    in before this waiter was registered (the lost wake-up)."""
    evt = threading.Event()
    if evq is not None:
        evq.append(evt)
    deadline = timeout + pyghmi_util._monotonic_time()
    pyghmi_session.ioqueue.append((deadline, evt, myaddr))
    if _already_queued(myaddr):
        return
    if deadline < pyghmi_session.selectdeadline:
        wake = pyghmi_session.iosockets[0]
        wake.sendto(b'\x01', (pyghmi_session.myself,
                              pyghmi_session.iosockets[0].getsockname()[1]))
    # The IO thread wakes us at the deadline; a second past it, it is
    # late or dead. pyghmi's callers treat an early return as a wake-up
    # and look at their own timers.
    if not evt.wait(max(timeout, 0.0) + 1.0):
        iothread = pyghmi_session.iothread
        if iothread is None or not iothread.is_alive():
            raise pyghmi_exc.IpmiException(
                'pyghmi\'s IO thread died: no IPMI answer can arrive in '
                'this process')


def _sockets_in_use(bmc: str, port: int) -> list[socket.socket]:
    """Local sockets already talking to ``bmc``: pyghmi routes answers by
    (BMC address, local port), so a second session needs another one."""
    used = []
    for res in socket.getaddrinfo(bmc, port, 0, socket.SOCK_DGRAM):
        sockaddr = res[4]
        if pyghmi_session.ipv6support and res[0] == socket.AF_INET:
            sockaddr = ('::ffff:' + sockaddr[0], sockaddr[1], 0, 0)
        handlers = pyghmi_session.Session.bmc_handlers.get(sockaddr) or {}
        used += [session.socket for session in tuple(handlers.values())]
    return used


class FencingSession(pyghmi_session.Session):
    """An RMCP+ session of our own whose sends pass ``gate`` when set."""

    def __new__(cls, bmc: str, userid: bytes, password: bytes,
                port: int = 623, kg: bytes | None = None,
                onlogon: t.Any = None, privlevel: int | None = None,
                keepalive: bool = True) -> FencingSession:
        self = object.__new__(cls)
        self.forbidsock = _sockets_in_use(bmc, port)
        self.gate: CallGate | None = None
        self.refused: BaseException | None = None
        return self

    def _xmit_packet(self, retry: bool = True, delay_xmit: t.Any = None,
                     timeout: t.Any = None) -> None:
        gate = self.gate
        if gate is not None and delay_xmit is None:
            try:
                gate.check(wait=False)     # inside pyghmi's session lock
            except BaseException as exc:   # never raise in a foreign loop
                self._refuse(exc)
                return
        super()._xmit_packet(retry, delay_xmit=delay_xmit, timeout=timeout)

    def _refuse(self, exc: BaseException) -> None:
        """Stop here without sending anything more, and remember why."""
        self.refused = exc
        self.lastpayload = None
        self.onlogpayload = None
        self.pendingpayloads.clear()
        with pyghmi_util.protect(pyghmi_session.WAITING_SESSIONS):
            self.waiting_sessions.pop(self, None)
        with pyghmi_util.protect(pyghmi_session.KEEPALIVE_SESSIONS):
            self.keepalive_sessions.pop(self, None)
        self.logged = 0
        self.logging = False


def _checked(rsp: dict[str, t.Any]) -> dict[str, t.Any]:
    if rsp.get('error'):
        raise pyghmi_exc.IpmiException(rsp['error'], rsp.get('code'))
    return rsp


class IpmiClient:
    """One fencing operation's session with one BMC.

    Chassis status and chassis control are sent as raw IPMI commands,
    as ipmitool does (no OEM detection round trips).
    """

    def __init__(self, address: str, port: int, username: bytes,
                 password: bytes) -> None:
        self.session = FencingSession(address, username, password,
                                      port=port, keepalive=False)

    def power(self) -> str:
        """``on`` or ``off`` (Get Chassis Status)."""
        rsp = _checked(self.session.raw_command(
            netfn=CHASSIS_NETFN, command=GET_CHASSIS_STATUS))
        return 'on' if rsp['data'][0] & 1 else 'off'

    def command(self, command: str, gate: CallGate) -> None:
        """Send chassis control ``command`` (``off`` or ``soft``); every
        transmission of it, retransmissions included, passes ``gate``."""
        session = self.session
        gate.check()            # may wait for a keepalive: not in the lock
        session.gate = gate
        try:
            rsp = session.raw_command(netfn=CHASSIS_NETFN,
                                      command=CHASSIS_CONTROL,
                                      data=[DIRECTIVES[command]])
        except pyghmi_exc.IpmiException:
            if session.refused is not None:
                raise session.refused from None
            raise
        finally:
            session.gate = None
        if session.refused is not None:
            raise session.refused
        _checked(rsp)

    def close(self) -> None:
        """Log out (nothing is sent if the session is already dead)."""
        self.session.logout()


install_pyghmi_fixes()     # before any session exists
