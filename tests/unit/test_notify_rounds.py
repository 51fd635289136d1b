"""Notification delivery rounds: guarded, bounded, fresh, stoppable."""
from __future__ import annotations

import threading
import time

import pytest

from freezer_dr import exceptions
from freezer_dr.engine.notify import Notification
from freezer_dr.notifiers.base import Delivery
from freezer_dr.notifiers.base import Event
from freezer_dr.notifiers.base import Notifier


class Recipients(Notifier):
    """A notifier with one delivery per recipient; ``down`` ones fail,
    and composing fails while ``directory_down`` rounds remain."""

    def __init__(self, recipients: list[str], down: set[str] = frozenset(),
                 directory_down: int = 0) -> None:
        self.recipients = recipients
        self.down = set(down)
        self.directory_down = directory_down
        self.composed = 0
        self.delivered: list[str] = []

    def send(self, event: Event, key: str) -> None:
        raise AssertionError('the engine uses deliveries()')

    def deliveries(self, event: Event, key: str) -> list[Delivery]:
        self.composed += 1
        if self.directory_down:
            self.directory_down -= 1
            raise exceptions.NotifyFailed('user directory unreachable')
        return [Delivery(f'{key}:{r}', r, lambda r=r: self._deliver(r))
                for r in self.recipients]

    def _deliver(self, recipient: str) -> None:
        if recipient in self.down:
            raise exceptions.NotifyFailed(f'{recipient}: mailbox full')
        self.delivered.append(recipient)


class Calls:
    """Counts the guard and save calls of one delivery."""

    def __init__(self) -> None:
        self.guards = 0
        self.saves = 0

    def guard(self) -> None:
        self.guards += 1

    def save(self) -> None:
        self.saves += 1


EVENT = Event(kind='recovered', summary='host c1 recovered', host='c1')


def deliver(notifier: Notifier, attempts: int = 3, rounds=None,
            stop: threading.Event | None = None, delay: float = 0.0,
            sent: dict | None = None, calls: Calls | None = None) -> bool:
    calls = calls or Calls()
    notification = Notification({'n': notifier}, attempts,
                                stop or threading.Event(), retry_delay=delay)
    return notification._deliver(EVENT, 'r1:recovered',
                                 {} if sent is None else sent, calls.guard,
                                 calls.save, rounds)


def test_everything_delivered_in_one_round_each_once():
    notifier = Recipients(['ann', 'bob'])
    sent: dict = {}
    calls = Calls()
    assert deliver(notifier, sent=sent, calls=calls)
    assert notifier.delivered == ['ann', 'bob']
    assert notifier.composed == 1
    assert set(sent) == {'r1:recovered:n:ann', 'r1:recovered:n:bob'}
    # the lease is checked before composing and before each delivery
    assert calls.guards == 3 and calls.saves == 2


def test_a_failing_recipient_is_retried_alone_until_the_rounds_run_out():
    notifier = Recipients(['ann', 'bob'], down={'bob'})
    sent: dict = {}
    calls = Calls()
    assert not deliver(notifier, attempts=3, sent=sent, calls=calls)
    assert notifier.delivered == ['ann']         # never twice
    assert notifier.composed == 3
    assert set(sent) == {'r1:recovered:n:ann'}
    # before composing, x3; before delivering: ann and bob, then bob x2
    assert calls.guards == 3 + 2 + 1 + 1
    # what went through stays recorded: a later call sends bob only
    notifier.down.clear()
    assert deliver(notifier, rounds=1, sent=sent)
    assert notifier.delivered == ['ann', 'bob']


def test_each_round_asks_the_notifier_afresh():
    notifier = Recipients(['ann'], directory_down=2)
    assert deliver(notifier, attempts=3)
    assert notifier.composed == 3 and notifier.delivered == ['ann']


def test_rounds_bound_the_attempts_and_waits_grow():
    notifier = Recipients(['ann'], down={'ann'})
    started = time.monotonic()
    assert not deliver(notifier, attempts=5, rounds=2, delay=0.2)
    took = time.monotonic() - started
    assert notifier.composed == 2
    assert 0.2 <= took < 0.6          # one wait of 1 x delay, not 1 + 2


def test_stop_during_a_wait_raises_leadership_lost():
    notifier = Recipients(['ann'], down={'ann'})
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    with pytest.raises(exceptions.LeadershipLost):
        deliver(notifier, attempts=3, stop=stop, delay=30.0)
    assert time.monotonic() - started < 5
    assert notifier.composed == 1


class LeaseLostAt(Calls):
    """The guard raises LeadershipLost at its ``n``-th call."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def guard(self) -> None:
        super().guard()
        if self.guards == self.n:
            raise exceptions.LeadershipLost('lease gone')


def test_a_lost_lease_in_the_guard_stops_before_the_delivery():
    notifier = Recipients(['ann', 'bob'])
    with pytest.raises(exceptions.LeadershipLost):
        deliver(notifier, calls=LeaseLostAt(3))
    assert notifier.delivered == ['ann'] and notifier.composed == 1
