"""The monitor interface: who is down, according to one source."""
from __future__ import annotations

import abc

from freezer_dr.engine.model import HostObservation


class Monitor(abc.ABC):
    """Reports every compute host with its evidence.

    Confirmation over time is the engine's job, not the monitor's: a
    monitor reports one look. When its source cannot be read it raises
    :class:`freezer_dr.exceptions.MonitorUnavailable` (the engine is blind
    and fails closed).
    """

    @abc.abstractmethod
    def hosts(self) -> list[HostObservation]:
        """Return one observation per compute host."""
