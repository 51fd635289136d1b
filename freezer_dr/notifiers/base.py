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
    (too many hosts down: nothing done), ``blind`` (monitor unreachable).
    ``recovery`` is the recovery record as a dict when there is one.
    """
    kind: str
    summary: str
    host: str | None = None
    recovery: dict[str, t.Any] | None = None
    details: dict[str, t.Any] = dataclasses.field(default_factory=dict)


class Notifier(abc.ABC):
    """Delivers events; raises :class:`~freezer_dr.exceptions.NotifyFailed`.

    ``key`` is an idempotency key: the engine records it once the send
    succeeded and never sends the same key again.
    """

    @abc.abstractmethod
    def send(self, event: Event, key: str) -> None:
        """Deliver ``event``."""
