"""The fencer interface: power a node off and prove it is off."""
from __future__ import annotations

import abc
import typing as t

from freezer_dr.engine.model import FenceResult
from freezer_dr.engine.model import PowerState


class Fencer(abc.ABC):
    """One fencing level of one node (one BMC, one libvirt domain...).

    ``deadline`` arguments are ``time.monotonic()`` values: every call
    returns or raises by then. Errors are raised as
    :class:`freezer_dr.exceptions.FenceFailed`; credentials never appear
    in messages.
    """

    #: the entry-point name of the driver (``ipmi``, ``libvirt``...)
    driver: t.ClassVar[str] = ''
    #: True for a level whose evidence is an operator's word, not a power
    #: reading (``manual``): it reads no power, and its evidence is refused
    #: while another level reads the node ON
    operator_confirmed: t.ClassVar[bool] = False

    def __init__(self, host: str, params: dict[str, t.Any]) -> None:
        self.host = host

    @abc.abstractmethod
    def power_state(self, deadline: float) -> PowerState:
        """Read the node's power state."""

    @abc.abstractmethod
    def fence(self, deadline: float, *,
              guard: t.Callable[[], None] | None = None) -> FenceResult:
        """Power the node off, then read the state back until off.

        ``guard`` is called right before each power command; it raises
        (e.g. LeadershipLost) to stop before the command is sent.
        """
