"""Manual fencing: an operator confirms the node is off."""
from __future__ import annotations

import typing as t

from freezer_dr.exceptions import FenceFailed
from freezer_dr.fencers.base import Fencer
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import Guard
from freezer_dr.fencers.context import no_guard
from freezer_dr.model import FenceResult
from freezer_dr.model import PowerState
from freezer_dr.model import now


class ManualFencer(Fencer):
    """Succeeds only once an operator confirmed the node is powered off.

    The confirmation source is ``context.manual_confirmation(host)``: the
    wall time of the operator's confirmation for the host's live recovery,
    or None. Its time is the evidence time: the engine refuses it unless
    it is newer than the last ON reading and the last fencing attempt of
    that recovery, and while a BMC of the host reads it ON.
    """

    driver = 'manual'
    operator_confirmed = True
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def __init__(self, host: str, params: dict[str, t.Any],
                 context: FenceContext | None = None) -> None:
        super().__init__(host, params)
        self.confirmed = (context or FenceContext()).manual_confirmation

    def __repr__(self) -> str:
        return f'ManualFencer(host={self.host!r})'

    def _confirmed_at(self) -> float | None:
        return self.confirmed(self.host) if self.confirmed else None

    def power_state(self, deadline: float) -> PowerState:
        """An operator's word is not a power reading."""
        return PowerState.UNKNOWN

    def fence(self, deadline: float, *,
              guard: Guard = no_guard) -> FenceResult:
        """No power command here, so ``guard`` is not needed."""
        started = now()
        confirmed_at = self._confirmed_at()
        if confirmed_at is None:
            raise FenceFailed(
                f'{self.host}: awaiting operator confirmation: run '
                f'freezer-dr-manage host fenced {self.host}')
        return FenceResult(
            host=self.host, success=True, level=self.driver,
            power_state=PowerState.OFF.value,
            detail=f'operator confirmed power off at {confirmed_at:.3f}',
            attempts=[{'action': 'confirmed', 't': confirmed_at}],
            started_at=started, finished_at=now(), evidence_at=confirmed_at)
