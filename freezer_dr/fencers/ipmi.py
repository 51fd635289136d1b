"""IPMI 2.0 (lanplus) fencing with pyghmi's client."""
from __future__ import annotations

import time
import typing as t

from oslo_log import log as logging
from pyghmi import exceptions as pyghmi_exc
from pyghmi.ipmi import command as ipmi_command

from freezer_dr.engine.model import FenceResult
from freezer_dr.engine.model import PowerState
from freezer_dr.engine.model import now
from freezer_dr.exceptions import FenceFailed
from freezer_dr.fencers.base import Fencer
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import Guard
from freezer_dr.fencers.context import Secret
from freezer_dr.fencers.context import call_deadline
from freezer_dr.fencers.context import call_with_deadline
from freezer_dr.fencers.context import no_guard
from freezer_dr.fencers.context import wait_for_off

LOG = logging.getLogger(__name__)

T = t.TypeVar('T')


def _reason(exc: Exception) -> str:
    """pyghmi raises IpmiException(None) on timeouts: name it anyway."""
    if exc.args and exc.args[0]:
        return str(exc.args[0])
    return f'{type(exc).__name__} (no answer)'


class IpmiFencer(Fencer):
    """Power a node off through its BMC and read the state back."""

    driver = 'ipmi'
    #: params the inventory must provide / may provide
    required = ('address', 'username', 'password')
    optional = ('port',)
    secrets = ('password',)

    def __init__(self, host: str, params: dict[str, t.Any],
                 context: FenceContext | None = None) -> None:
        super().__init__(host, params)
        self.address = str(params['address'])
        self.port = int(params.get('port', 623))
        self.username = str(params['username'])
        password = params['password']
        self._password = (password if isinstance(password, Secret)
                          else Secret(str(password)))
        self.settings = (context or FenceContext()).settings
        self.bmc = f'{self.address}:{self.port}'

    def __repr__(self) -> str:
        return f'IpmiFencer(host={self.host!r}, bmc={self.bmc!r})'

    def _call(self, what: str, fn: t.Callable[[], T], deadline: float) -> T:
        """One pyghmi call under the hard deadline, errors translated."""
        label = f'{self.host}: IPMI BMC {self.bmc}: {what}'

        def guarded() -> T:
            try:
                return fn()
            except (pyghmi_exc.PyghmiException, OSError) as exc:
                raise FenceFailed(f'{label} failed: {_reason(exc)}')
            except Exception as exc:
                # pyghmi leaks internal errors (AttributeError, struct.error)
                # on protocol surprises and thread races: the node is not
                # verified off, so this fails the level (fail closed).
                raise FenceFailed(f'{label} failed: pyghmi error '
                                  f'{type(exc).__name__}: {exc}')

        return call_with_deadline(
            guarded, call_deadline(deadline, self.settings), label)

    def _login(self, deadline: float) -> ipmi_command.Command:
        # user and password as bytes: with str a second Command to the
        # same BMC in one process hangs (pyghmi session cache key).
        return self._call('login', lambda: ipmi_command.Command(
            self.address, self.username.encode(),
            self._password.reveal().encode(), port=self.port), deadline)

    def _read(self, cmd: ipmi_command.Command, deadline: float) -> str:
        rsp = self._call('power status', cmd.get_power, deadline)
        state = rsp.get('powerstate')
        return state if state in ('on', 'off') else PowerState.UNKNOWN.value

    def power_state(self, deadline: float) -> PowerState:
        return PowerState(self._read(self._login(deadline), deadline))

    def _switch_off(self, cmd: ipmi_command.Command, how: str,
                    wait: float, deadline: float, guard: Guard,
                    attempts: list[dict[str, t.Any]]) -> str:
        """Send ``how`` ('shutdown' or 'off'), then poll up to ``wait`` s."""
        guard()
        self._call(f'power {how}',
                   lambda: cmd.set_power(how, wait=False), deadline)
        attempts.append({'action': how, 't': now()})
        until = min(deadline, time.monotonic() + wait)
        state = wait_for_off(lambda: self._read(cmd, deadline), until,
                             self.settings.poll_interval)
        attempts.append({'action': 'status', 'power': state, 't': now()})
        return state

    def fence(self, deadline: float, *,
              guard: Guard = no_guard) -> FenceResult:
        started = now()
        attempts: list[dict[str, t.Any]] = []
        cmd = self._login(deadline)
        state = self._read(cmd, deadline)
        attempts.append({'action': 'status', 'power': state, 't': now()})
        if state != 'off' and self.settings.soft_shutdown_timeout > 0:
            state = self._switch_off(cmd, 'shutdown',
                                     self.settings.soft_shutdown_timeout,
                                     deadline, guard, attempts)
        if state != 'off':
            state = self._switch_off(cmd, 'off',
                                     self.settings.power_off_timeout,
                                     deadline, guard, attempts)
        if state != 'off':
            raise FenceFailed(
                f'{self.host}: IPMI BMC {self.bmc}: power still {state} '
                f'{now() - started:.1f} s after the off command')
        LOG.info('%s: IPMI BMC %s reports power off', self.host, self.bmc)
        return FenceResult(host=self.host, success=True, level=self.driver,
                           power_state=PowerState.OFF.value,
                           detail=f'IPMI BMC {self.bmc} reports power off',
                           attempts=attempts, started_at=started,
                           finished_at=now())
