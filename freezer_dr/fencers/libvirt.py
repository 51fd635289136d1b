"""libvirt fencing: destroy a node's domain and confirm it is shut off.

libvirt-python is optional (extra ``libvirt``); it is imported when a
libvirt fencer is built, and its absence is a ConfigError then.
"""
from __future__ import annotations

import types
import typing as t

from freezer_dr.exceptions import ConfigError
from freezer_dr.fencers.base import PowerSwitchFencer
from freezer_dr.fencers.context import CallGate
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import Guard
from freezer_dr.model import PowerState

VIR_DOMAIN_NOSTATE = 0
VIR_DOMAIN_SHUTOFF = 5
VIR_ERR_OPERATION_INVALID = 55     # destroy of a domain that is not running


def import_libvirt() -> types.ModuleType:
    """Import libvirt-python, silencing its stderr error printer."""
    try:
        import libvirt
    except ImportError as exc:
        raise ConfigError('libvirt fencing needs libvirt-python: '
                          'pip install "freezer-dr[libvirt]"') from exc
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


class LibvirtFencer(PowerSwitchFencer):
    """Power a node off by destroying its libvirt domain."""

    driver = 'libvirt'
    required = ('uri', 'domain')
    optional: tuple[str, ...] = ()
    has_soft_shutdown = False

    def __init__(self, host: str, params: dict[str, t.Any],
                 context: FenceContext | None = None) -> None:
        super().__init__(host, params)
        self.libvirt = import_libvirt()
        self.uri = str(params['uri'])
        self.domain = str(params['domain'])
        self.settings = (context or FenceContext()).settings
        self.where = f'libvirt {self.uri} domain {self.domain}'

    def __repr__(self) -> str:
        return (f'LibvirtFencer(host={self.host!r}, uri={self.uri!r}, '
                f'domain={self.domain!r})')

    def _failure(self, exc: Exception) -> str | None:
        if isinstance(exc, self.libvirt.libvirtError):
            return exc.get_error_message()
        return None

    def _open(self, deadline: float) -> t.Any:
        def lookup(_gate: CallGate) -> t.Any:
            conn = self.libvirt.open(self.uri)
            try:
                dom = conn.lookupByName(self.domain)
            except self.libvirt.libvirtError:
                conn.close()
                raise
            return dom
        return self._call('lookup', lookup, deadline, orphan=self._close)

    def _read(self, dom: t.Any, deadline: float) -> str:
        state = self._call('state', lambda _gate: dom.state(), deadline)[0]
        if state == VIR_DOMAIN_SHUTOFF:
            return PowerState.OFF.value
        if state == VIR_DOMAIN_NOSTATE:
            return PowerState.UNKNOWN.value
        return PowerState.ON.value

    def _send(self, dom: t.Any, command: str, deadline: float,
              guard: Guard) -> dict[str, t.Any]:
        def destroy(gate: CallGate) -> str:
            gate.check()
            try:
                dom.destroy()
            except self.libvirt.libvirtError as exc:
                if exc.get_error_code() == VIR_ERR_OPERATION_INVALID:
                    return 'already off'
                raise
            return 'destroyed'
        return {'call': 'destroy',
                'result': self._call('destroy', destroy, deadline, guard)}

    def _close(self, dom: t.Any) -> None:
        dom.connect().close()
