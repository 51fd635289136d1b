"""The fencer interface, and the shared flow of fencers with a power
switch: read the power, switch it off, read it back until off."""
from __future__ import annotations

import abc
import time
import typing as t

from oslo_log import log as logging

from freezer_dr.exceptions import FenceFailed
from freezer_dr.exceptions import FreezerDRError
from freezer_dr.fencers.context import CallGate
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.context import Guard
from freezer_dr.fencers.context import call_deadline
from freezer_dr.fencers.context import finish_quietly
from freezer_dr.fencers.context import gated_call
from freezer_dr.fencers.context import no_guard
from freezer_dr.fencers.context import wait_for_off
from freezer_dr.model import FenceResult
from freezer_dr.model import PowerState
from freezer_dr.model import now

LOG = logging.getLogger(__name__)

T = t.TypeVar('T')
Connection = t.Any


class Fencer(abc.ABC):
    """One fencing level of one node (one BMC, one libvirt domain...).

    ``deadline`` arguments are ``time.monotonic()`` values: every call
    returns or raises by then. Errors are raised as
    :class:`freezer_dr.exceptions.FenceFailed`; credentials never appear
    in messages.
    """

    #: the entry-point name of the driver (``ipmi``, ``libvirt``...)
    driver: t.ClassVar[str] = ''
    #: True for a level whose evidence is an operator's word, not a power
    #: reading (``manual``): it reads no power, and its evidence is refused
    #: while another level reads the node ON
    operator_confirmed: t.ClassVar[bool] = False

    def __init__(self, host: str, params: dict[str, t.Any]) -> None:
        self.host = host

    @abc.abstractmethod
    def power_state(self, deadline: float) -> PowerState:
        """Read the node's power state."""

    @abc.abstractmethod
    def fence(self, deadline: float, *,
              guard: t.Callable[[], None] | None = None) -> FenceResult:
        """Power the node off, then read the state back until off.

        ``guard`` is called right before each power command; it raises
        (e.g. LeadershipLost) to stop before the command is sent.
        """


class PowerSwitchFencer(Fencer):
    """A node behind a power switch (BMC or hypervisor).

    Subclasses say how to connect, read the power, send a command and
    disconnect, and how to name their library's errors; this class runs
    every one of those calls under a hard deadline and owns the fencing
    flow: read; a soft shutdown first if ``soft_shutdown_timeout`` > 0
    and the switch has one; the hard off; read back until off. The
    ``guard`` and the call's :class:`CallGate` are checked in the worker
    thread right before a command is sent (``_send`` does it).
    """

    #: the switch as named in messages, e.g. ``IPMI BMC 10.0.0.1:623``
    where: str = ''
    settings: FencingSettings = FencingSettings()
    #: whether the switch offers a soft (ACPI) shutdown (default of
    #: :meth:`_has_soft_shutdown`)
    has_soft_shutdown: t.ClassVar[bool] = True

    # -- what a driver provides ------------------------------------------
    @abc.abstractmethod
    def _open(self, deadline: float) -> Connection:
        """Connect (log in); the result is handed to the other hooks."""

    @abc.abstractmethod
    def _read(self, conn: Connection, deadline: float) -> str:
        """The power: ``on``, ``off`` or ``unknown`` (never a command)."""

    @abc.abstractmethod
    def _send(self, conn: Connection, command: str, deadline: float,
              guard: Guard) -> dict[str, t.Any]:
        """Send ``soft`` or ``off``; return the attempt's details.

        Must go through :meth:`_call` with ``guard`` so that
        ``gate.check()`` runs right before the command leaves.
        """

    def _has_soft_shutdown(self, conn: Connection) -> bool:
        """Whether this switch offers a soft (ACPI) shutdown."""
        return self.has_soft_shutdown

    def _close(self, conn: Connection) -> None:
        """Disconnect (may do I/O; bounded by :meth:`_disconnect`)."""

    def _failure(self, exc: Exception) -> str | None:
        """The reason to report for a library error; None: not one."""
        return None

    # -- shared machinery ------------------------------------------------
    def _call(self, what: str, fn: t.Callable[[CallGate], T],
              deadline: float, guard: Guard = no_guard,
              orphan: t.Callable[[T], object] | None = None) -> T:
        """``fn(gate)`` under the hard deadline, errors translated into
        FenceFailed naming the host, the switch and the step; a result
        that comes too late goes to ``orphan`` (a connection to close)."""
        label = f'{self.host}: {self.where}: {what}'

        def translated(gate: CallGate) -> T:
            try:
                return fn(gate)
            except FreezerDRError:
                raise
            except Exception as exc:
                reason = self._failure(exc)
                if reason is None:
                    raise
                raise FenceFailed(f'{label} failed: {reason}') from None

        return gated_call(translated, call_deadline(deadline, self.settings),
                          label, guard, orphan)

    def _disconnect(self, conn: Connection, deadline: float) -> None:
        finish_quietly(lambda: self._close(conn),
                       call_deadline(deadline, self.settings),
                       f'{self.host}: {self.where}: close')

    def power_state(self, deadline: float) -> PowerState:
        conn = self._open(deadline)
        try:
            return PowerState(self._read(conn, deadline))
        finally:
            self._disconnect(conn, deadline)

    def _switch_off(self, conn: Connection, command: str, wait: float,
                    deadline: float, guard: Guard,
                    attempts: list[dict[str, t.Any]]) -> str:
        """Send ``command``, then read back for up to ``wait`` s."""
        guard()
        entry = self._send(conn, command, deadline, guard)
        attempts.append({'action': command, **entry, 't': now()})
        until = min(deadline, time.monotonic() + wait)
        state = wait_for_off(lambda: self._read(conn, deadline), until,
                             self.settings.poll_interval)
        attempts.append({'action': 'status', 'power': state, 't': now()})
        return state

    def fence(self, deadline: float, *,
              guard: Guard = no_guard) -> FenceResult:
        """The shared flow; a failure after the node was read ON says so
        (``FenceFailed.power``), so older evidence of power-off is not
        trusted afterwards."""
        started = now()
        attempts: list[dict[str, t.Any]] = []
        seen_on: float | None = None
        conn = self._open(deadline)
        try:
            state = self._read(conn, deadline)
            attempts.append({'action': 'status', 'power': state,
                             't': now()})
            if state == 'on':
                seen_on = now()
            if (state != 'off' and self.settings.soft_shutdown_timeout > 0
                    and self._has_soft_shutdown(conn)):
                state = self._switch_off(
                    conn, 'soft', self.settings.soft_shutdown_timeout,
                    deadline, guard, attempts)
            if state != 'off':
                state = self._switch_off(conn, 'off',
                                         self.settings.power_off_timeout,
                                         deadline, guard, attempts)
        except FenceFailed as error:
            if seen_on is not None and error.power is None:
                error.power, error.seen_at = 'on', seen_on
            raise
        finally:
            self._disconnect(conn, deadline)
        if state != 'off':
            raise FenceFailed(
                f'{self.host}: {self.where}: power still {state} '
                f'{now() - started:.1f} s after the off command',
                power=state, seen_at=now())
        LOG.info('%s: %s reports power off', self.host, self.where)
        return FenceResult(host=self.host, success=True, level=self.driver,
                           power_state=PowerState.OFF.value,
                           detail=f'{self.where} reports power off',
                           attempts=attempts, started_at=started,
                           finished_at=now(), evidence_at=now())
