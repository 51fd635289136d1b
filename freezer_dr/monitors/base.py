"""The monitor interface: who is down, according to one source."""
from __future__ import annotations

import abc
import dataclasses

from freezer_dr.model import HostObservation


@dataclasses.dataclass(frozen=True)
class LookNotes:
    """What one look read but could not use: counted, never raised.

    The engine may show these (status output, logs, metrics); hosts the
    source answered about but could not interpret are not here: they are
    observations with ``state='unknown'`` and the reason in
    ``evidence['unknown']``.
    """
    #: entries that name no host at all (no observation can carry them)
    unnamed_entries: int = 0
    #: one sentence per problem (an unnamed entry, an unreadable source)
    problems: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.unnamed_entries or self.problems)


class Monitor(abc.ABC):
    """Reports every compute host with its evidence.

    Confirmation over time is the engine's job, not the monitor's: a
    monitor reports one look. When its source cannot be read it raises
    :class:`freezer_dr.exceptions.MonitorUnavailable` (the engine is blind
    and fails closed). A host the source answers about in a way the
    monitor cannot interpret is reported with ``state='unknown'`` (the
    engine treats it as blind); what names no host is in
    :attr:`last_notes`.
    """

    #: what the latest :meth:`hosts` call could not use
    last_notes: LookNotes = LookNotes()

    @abc.abstractmethod
    def hosts(self) -> list[HostObservation]:
        """Return one observation per compute host."""
