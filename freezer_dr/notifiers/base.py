"""The notifier interface: tell people what happened."""
from __future__ import annotations

import abc
import dataclasses
import typing as t


@dataclasses.dataclass
class Event:
    """Something people must hear about.

    ``kind`` is one of ``recovered`` (a recovery ended, done or failed),
    ``fence_failed`` (a host is held because fencing failed), ``storm``
    (too many hosts down: nothing done), ``blind`` (monitor unreachable),
    ``held`` (a gate holds a host's recovery).
    ``recovery`` is the recovery record as a dict when there is one.
    """
    kind: str
    summary: str
    host: str | None = None
    recovery: dict[str, t.Any] | None = None
    details: dict[str, t.Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One message to one recipient, ready to go.

    ``subkey`` is unique per recipient within an event's key and stable
    across replicas; ``deliver()`` sends it or raises ``NotifyFailed``.
    """
    subkey: str
    recipient: str
    deliver: t.Callable[[], None]


class Notifier(abc.ABC):
    """Delivers events; raises :class:`~freezer_dr.exceptions.NotifyFailed`.

    ``key`` is an idempotency key: the engine records it once the send
    succeeded and never sends the same key again. A notifier with several
    recipients also offers :meth:`deliveries`, so the engine can record
    each recipient's sub-key as it goes and never mail anyone twice.
    """

    @abc.abstractmethod
    def send(self, event: Event, key: str) -> None:
        """Deliver ``event``."""

    def deliveries(self, event: Event, key: str) -> list[Delivery]:
        """The messages ``event`` makes, one per recipient.

        Default: one delivery, sub-key ``key``, calling :meth:`send`.
        """
        return [Delivery(key, type(self).__name__,
                         lambda: self.send(event, key))]
