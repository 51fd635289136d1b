"""The evacuator interface: isolate a host and move its instances."""
from __future__ import annotations

import abc
import typing as t

from freezer_dr.model import Instance


class Evacuator(abc.ABC):
    """Talks to the compute service on the engine's behalf.

    Every method is idempotent against the cloud's state; errors are raised
    as :class:`freezer_dr.exceptions.EvacuationFailed` (the request was
    refused) or :class:`freezer_dr.exceptions.CloudUnavailable` (retry).
    """

    @abc.abstractmethod
    def isolate(self, host: str, reason: str,
                guard: t.Callable[[], None] | None = None) -> None:
        """Force the host's compute service down, then disable it.

        ``guard`` is called right before each write; it raises (e.g.
        LeadershipLost) to stop before the write is sent.
        """

    @abc.abstractmethod
    def instances(self, host: str) -> list[Instance]:
        """Every server on ``host``, across all projects."""

    @abc.abstractmethod
    def evacuate(self, instance_id: str,
                 guard: t.Callable[[], None] | None = None,
                 keep_stopped: bool = False) -> None:
        """Ask the cloud to rebuild the server on another host.

        ``guard`` is called immediately before the request goes on the
        wire (after any re-authentication or discovery); it raises to stop
        it. The call is over, sent or abandoned unsent, within the
        evacuator's API timeout. ``keep_stopped``: the server was stopped;
        rebuild it stopped if the cloud can (its power is restored after
        the evacuation either way).
        """

    @abc.abstractmethod
    def status(self, instance_id: str) -> Instance:
        """The server as it is now."""

    @abc.abstractmethod
    def evacuations(self, instance_id: str, since: float) -> list[dict]:
        """Evacuation migrations of the server created after ``since``."""

    @abc.abstractmethod
    def set_power(self, instance_id: str, on: bool,
                  guard: t.Callable[[], None] | None = None) -> None:
        """Start or stop the server (restore its original power state).

        ``guard`` as for :meth:`evacuate`.
        """

    @abc.abstractmethod
    def enable(self, host: str) -> None:
        """Return a repaired host to service (clear force-down, enable)."""
