"""libvirt fencing: destroy a node's domain and confirm it is shut off.

libvirt-python is optional (extra ``libvirt``); it is imported when a
libvirt fencer is built, and its absence is a ConfigError then.
"""
from __future__ import annotations

import time
import types
import typing as t

from oslo_log import log as logging

from freezer_dr.engine.model import FenceResult
from freezer_dr.engine.model import PowerState
from freezer_dr.engine.model import now
from freezer_dr.exceptions import ConfigError
from freezer_dr.exceptions import FenceFailed
from freezer_dr.fencers.base import Fencer
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import Guard
from freezer_dr.fencers.context import call_deadline
from freezer_dr.fencers.context import call_with_deadline
from freezer_dr.fencers.context import no_guard
from freezer_dr.fencers.context import wait_for_off

LOG = logging.getLogger(__name__)

T = t.TypeVar('T')

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


class LibvirtFencer(Fencer):
    """Power a node off by destroying its libvirt domain."""

    driver = 'libvirt'
    required = ('uri', 'domain')
    optional: tuple[str, ...] = ()

    def __init__(self, host: str, params: dict[str, t.Any],
                 context: FenceContext | None = None) -> None:
        super().__init__(host, params)
        self.libvirt = import_libvirt()
        self.uri = str(params['uri'])
        self.domain = str(params['domain'])
        self.settings = (context or FenceContext()).settings

    def __repr__(self) -> str:
        return (f'LibvirtFencer(host={self.host!r}, uri={self.uri!r}, '
                f'domain={self.domain!r})')

    def _call(self, what: str, fn: t.Callable[[], T], deadline: float) -> T:
        label = f'{self.host}: libvirt {self.uri} domain {self.domain}: {what}'

        def guarded() -> T:
            try:
                return fn()
            except self.libvirt.libvirtError as exc:
                raise FenceFailed(f'{label} failed: '
                                  f'{exc.get_error_message()}')

        return call_with_deadline(
            guarded, call_deadline(deadline, self.settings), label)

    def _domain(self, deadline: float) -> t.Any:
        def lookup() -> t.Any:
            conn = self.libvirt.open(self.uri)
            try:
                return conn.lookupByName(self.domain)
            except self.libvirt.libvirtError:
                conn.close()
                raise
        return self._call('lookup', lookup, deadline)

    def _read(self, dom: t.Any, deadline: float) -> str:
        state = self._call('state', dom.state, deadline)[0]
        if state == VIR_DOMAIN_SHUTOFF:
            return PowerState.OFF.value
        if state == VIR_DOMAIN_NOSTATE:
            return PowerState.UNKNOWN.value
        return PowerState.ON.value

    def _destroy(self, dom: t.Any) -> str:
        try:
            dom.destroy()
        except self.libvirt.libvirtError as exc:
            if exc.get_error_code() == VIR_ERR_OPERATION_INVALID:
                return 'already off'
            raise
        return 'destroyed'

    def power_state(self, deadline: float) -> PowerState:
        dom = self._domain(deadline)
        try:
            return PowerState(self._read(dom, deadline))
        finally:
            self._close(dom)

    def _close(self, dom: t.Any) -> None:
        try:
            dom.connect().close()
        except self.libvirt.libvirtError as exc:
            LOG.debug('%s: closing libvirt connection: %s', self.host,
                      exc.get_error_message())

    def fence(self, deadline: float, *,
              guard: Guard = no_guard) -> FenceResult:
        started = now()
        dom = self._domain(deadline)
        try:
            guard()
            outcome = self._call('destroy', lambda: self._destroy(dom),
                                 deadline)
            attempts: list[dict[str, t.Any]] = [
                {'action': 'destroy', 'result': outcome, 't': now()}]
            until = min(deadline,
                        time.monotonic() + self.settings.power_off_timeout)
            state = wait_for_off(lambda: self._read(dom, deadline), until,
                                 self.settings.poll_interval)
            attempts.append({'action': 'status', 'power': state, 't': now()})
        finally:
            self._close(dom)
        if state != PowerState.OFF.value:
            raise FenceFailed(f'{self.host}: libvirt {self.uri} domain '
                              f'{self.domain}: still {state} after destroy')
        LOG.info('%s: libvirt domain %s shut off (%s)', self.host,
                 self.domain, outcome)
        return FenceResult(host=self.host, success=True, level=self.driver,
                           power_state=PowerState.OFF.value,
                           detail=f'libvirt domain {self.domain} shut off '
                                  f'({outcome})',
                           attempts=attempts, started_at=started,
                           finished_at=now())
