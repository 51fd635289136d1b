"""What every fencer gets besides its params: settings, operator
confirmations, secrets, and the hard-deadline helpers for BMC calls."""
from __future__ import annotations

import dataclasses
import threading
import time
import typing as t

from oslo_log import log as logging

from freezer_dr.exceptions import FenceFailed

LOG = logging.getLogger(__name__)

T = t.TypeVar('T')

#: ``confirmed(host)`` -> wall time an operator confirmed ``host`` is off
ManualConfirmation = t.Callable[[str], 'float | None']

#: called right before each power command; raises to stop it (the caller
#: decides why, e.g. LeadershipLost). Fencers let its exception propagate.
Guard = t.Callable[[], None]


def no_guard() -> None:
    """The default guard: nothing stops the command."""


class WaitingGuard:
    """A guard that may wait (for a keepalive, say) and its form that
    never waits, for code that must not block: a check made while holding
    a library's lock (pyghmi's session lock) uses :attr:`now`."""

    def __init__(self, wait: Guard, now: Guard) -> None:
        self.wait = wait
        self.now = now

    def __call__(self) -> None:
        self.wait()


def without_waiting(guard: Guard) -> Guard:
    """The form of ``guard`` that never waits (itself if it has none)."""
    return getattr(guard, 'now', guard)


class Secret:
    """A password that never shows in repr, str or logs."""

    __slots__ = ('_value',)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return 'Secret(***)'

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclasses.dataclass(frozen=True)
class FencingSettings:
    """Time bounds of fencing, from the [fencing] options."""
    call_timeout: float = 5.0          # hard bound of one BMC call
    power_off_timeout: float = 20.0    # wait for "off" after the command
    soft_shutdown_timeout: float = 0.0  # 0 = no soft shutdown first
    poll_interval: float = 0.25        # between power read-backs

    @classmethod
    def from_config(cls, conf: t.Any) -> FencingSettings:
        """Build from ``conf`` (passed in, never a global)."""
        group = conf.fencing
        return cls(call_timeout=group.call_timeout,
                   power_off_timeout=group.power_off_timeout,
                   soft_shutdown_timeout=group.soft_shutdown_timeout,
                   poll_interval=group.poll_interval)


@dataclasses.dataclass(frozen=True)
class FenceContext:
    """Passed to every fencer as ``context``; each uses what it needs."""
    settings: FencingSettings = FencingSettings()
    manual_confirmation: ManualConfirmation | None = None


class CallGate:
    """What a worker thread checks right before a power command leaves.

    :func:`call_with_deadline` stops waiting at its deadline but cannot
    stop the thread; the gate makes sure such an abandoned thread (or a
    library retransmitting on its behalf) never sends a power command
    after its caller gave up, after the call's deadline, or once the
    guard says the lease is gone.
    """

    def __init__(self, deadline: float, guard: Guard = no_guard,
                 what: str = 'call') -> None:
        self.deadline = deadline
        self.guard = guard
        self.what = what
        self.cancelled = threading.Event()

    def check(self, wait: bool = True) -> None:
        """Raise unless a power command may be sent now.

        The guard's own exception (e.g. LeadershipLost) propagates; an
        abandoned or late call raises FenceFailed. ``wait=False`` uses
        the guard's form that never waits (see :class:`WaitingGuard`).
        """
        (self.guard if wait else without_waiting(self.guard))()
        if self.cancelled.is_set():
            raise FenceFailed(f'{self.what}: power command not sent: '
                              f'the caller abandoned the call')
        if time.monotonic() >= self.deadline:
            raise FenceFailed(f'{self.what}: power command not sent: '
                              f'the call deadline passed')


def call_with_deadline(fn: t.Callable[[], T], deadline: float,
                       what: str, gate: CallGate | None = None,
                       orphan: t.Callable[[T], object] | None = None) -> T:
    """Run ``fn`` in a daemon thread; stop waiting at ``deadline``.

    ``deadline`` is a ``time.monotonic()`` value. Raises FenceFailed
    ``"{what}: no answer within N s"`` when it passes, after setting
    ``gate.cancelled`` so the abandoned thread sends no power command
    (a library call itself cannot be cancelled). Exceptions raised by
    ``fn`` are re-raised here unchanged. A result that comes after the
    caller gave up goes to ``orphan`` (to log out of a late login, say):
    every result reaches exactly one of the two.
    """
    budget = deadline - time.monotonic()
    if budget <= 0:
        raise FenceFailed(f'{what}: deadline already passed')
    call = _Call(fn, what, orphan)
    if not call.wait(budget):
        if gate is not None:
            gate.cancelled.set()
        raise FenceFailed(f'{what}: no answer within {budget:.1f} s')
    if 'error' in call.box:
        raise call.box['error']
    return call.box['result']


def gated_call(fn: t.Callable[[CallGate], T], deadline: float, what: str,
               guard: Guard = no_guard,
               orphan: t.Callable[[T], object] | None = None) -> T:
    """:func:`call_with_deadline` of ``fn(gate)``; ``fn`` calls
    ``gate.check()`` right before any power command it sends."""
    gate = CallGate(deadline, guard, what)
    return call_with_deadline(lambda: fn(gate), deadline, what, gate,
                              orphan)


def finish_quietly(fn: t.Callable[[], object], deadline: float,
                   what: str) -> None:
    """Run a clean-up call (logout, close) for at most until ``deadline``.

    Never raises and never waits past ``deadline`` (not at all if it has
    passed): a clean-up that hangs is left to its daemon thread.
    """
    call = _Call(fn, what)
    if not call.wait(max(0.0, deadline - time.monotonic())):
        LOG.debug('%s: left running after its deadline', what)
    elif 'error' in call.box:
        LOG.debug('%s: %s', what, call.box['error'])


class _Call:
    """``fn`` running in a daemon thread, its outcome in :attr:`box`
    unless the waiter gave up first (then a result goes to ``orphan``)."""

    def __init__(self, fn: t.Callable[[], t.Any], what: str,
                 orphan: t.Callable[[t.Any], object] | None = None) -> None:
        self.box: dict[str, t.Any] = {}
        self._fn = fn
        self._orphan = orphan
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._abandoned = False
        threading.Thread(target=self._run, name=f'fence-call {what}',
                         daemon=True).start()

    def wait(self, timeout: float) -> bool:
        """Whether the outcome is in :attr:`box`; False: abandoned."""
        if self._done.wait(timeout):
            return True
        with self._lock:
            self._abandoned = not self._done.is_set()
            return not self._abandoned

    def _run(self) -> None:
        try:
            outcome = {'result': self._fn()}
        except BaseException as exc:   # handed to the caller
            outcome = {'error': exc}
        with self._lock:
            if not self._abandoned:
                self.box.update(outcome)
                self._done.set()
                return
        if self._orphan is not None and 'result' in outcome:
            try:
                self._orphan(outcome['result'])
            except Exception as exc:   # noqa: BLE001 - clean-up only
                LOG.debug('clean-up of a late result failed: %s', exc)


def call_deadline(deadline: float, settings: FencingSettings) -> float:
    """The deadline of one call: the sooner of the overall deadline and
    now + call_timeout."""
    return min(deadline, time.monotonic() + settings.call_timeout)


def wait_for_off(read_power: t.Callable[[], str], until: float,
                 interval: float) -> str:
    """Read power until it is 'off' or ``until`` (monotonic) passes.

    Returns the last state read; ``read_power`` raises on errors (it is
    expected to bound each read with :func:`call_with_deadline`).
    """
    state = read_power()
    while state != 'off' and until - time.monotonic() > interval:
        time.sleep(interval)
        state = read_power()
    return state
