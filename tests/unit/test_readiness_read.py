"""A readiness check reads each fencing level, once more after a failure."""
from __future__ import annotations

from freezer_dr import exceptions
from freezer_dr.engine import preflight


class Level:
    """A fencing level whose power reads fail ``failures`` times first."""

    driver = 'ipmi'
    operator_confirmed = False

    def __init__(self, failures: int, power: str = 'on') -> None:
        self.failures = failures
        self.power = power
        self.reads = 0

    def power_state(self, deadline: float) -> str:
        self.reads += 1
        if self.reads <= self.failures:
            raise exceptions.FenceFailed('ipmi: no answer (packet lost)')
        return self.power


def test_one_lost_answer_is_read_again():
    level = Level(failures=1)
    result = preflight.check_host('c1', [level], read_timeout=1.0)
    assert result['ready'] and result['levels'][0]['power'] == 'on'
    assert level.reads == 2


def test_a_level_that_fails_twice_is_not_ready():
    level = Level(failures=2)
    result = preflight.check_host('c1', [level], read_timeout=1.0)
    assert not result['ready']
    assert result['summary'] == 'ipmi: ipmi: no answer (packet lost)'
    assert level.reads == 2
