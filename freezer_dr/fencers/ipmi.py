"""IPMI 2.0 (lanplus) fencing with pyghmi's client."""
from __future__ import annotations

import typing as t

from pyghmi import exceptions as pyghmi_exc

from freezer_dr.fencers.base import PowerSwitchFencer
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import Guard
from freezer_dr.fencers.context import Secret
from freezer_dr.fencers.ipmi_client import IpmiClient


def _reason(exc: Exception) -> str:
    """pyghmi raises IpmiException(None) on timeouts: name it anyway."""
    if exc.args and exc.args[0]:
        return str(exc.args[0])
    return f'{type(exc).__name__} (no answer)'


class IpmiFencer(PowerSwitchFencer):
    """Power a node off through its BMC and read the state back.

    Each operation (one fence, one power read) opens its own RMCP+
    session and logs out at the end (:mod:`freezer_dr.fencers.ipmi_client`).
    """

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
        self.where = f'IPMI BMC {self.bmc}'

    def __repr__(self) -> str:
        return f'IpmiFencer(host={self.host!r}, bmc={self.bmc!r})'

    def _failure(self, exc: Exception) -> str | None:
        if isinstance(exc, (pyghmi_exc.PyghmiException, OSError)):
            return _reason(exc)
        # pyghmi leaks internal errors (AttributeError, struct.error) on
        # protocol surprises: the node is not verified off, so this fails
        # the level (fail closed).
        return f'pyghmi error {type(exc).__name__}: {exc}'

    def _open(self, deadline: float) -> IpmiClient:
        def login(_gate: t.Any) -> IpmiClient:
            return IpmiClient(self.address, self.port,
                              self.username.encode(),
                              self._password.reveal().encode())
        # a login that comes too late is logged out: BMCs have few slots
        return self._call('login', login, deadline, orphan=self._close)

    def _read(self, conn: IpmiClient, deadline: float) -> str:
        return self._call('power status', lambda _gate: conn.power(),
                          deadline)

    def _send(self, conn: IpmiClient, command: str, deadline: float,
              guard: Guard) -> dict[str, t.Any]:
        self._call(f'power {command}',
                   lambda gate: conn.command(command, gate), deadline, guard)
        return {}

    def _close(self, conn: IpmiClient) -> None:
        conn.close()
