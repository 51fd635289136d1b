"""The chaos scheduler aims at the cells of the matrix still uncovered."""
from __future__ import annotations

import random

from tests.chaos import coverage
from tests.chaos import faults


def test_scheduler_aims_at_uncovered_cells_least_attempted_first():
    kinds = {'k1': faults.FaultKind('k1', faults.kill('leader'),
                                    ('detecting', 'confirmed', 'fencing')),
             'k2': faults.FaultKind('k2', faults.kill('leader'),
                                    ('evacuating',))}
    matrix = coverage.Coverage(kinds, min_hits=1)
    matrix.record('k1', 'confirmed', 'confirmed', {})
    matrix.record('k2', 'evacuating', 'notifying', {})    # missed
    rng = random.Random(1)
    assert {matrix.next_cell(rng) for _ in range(20)} == {('k1', 'fencing')}
    matrix.record('k1', 'fencing', 'fencing', {})
    assert matrix.missing() == [('k2', 'evacuating')]
    assert matrix.hits[('k2', 'notifying')] == 1
    matrix.record('k2', 'evacuating', 'done', {})
    assert matrix.hits[('k2', 'ended')] == 1
    matrix.record('k2', 'evacuating', 'evacuating', {})
    assert matrix.missing() == []                   # recovery steps done
    assert matrix.next_cell(rng) == ('k1', 'detecting')   # then detecting
    assert 'k2' in matrix.table() and '.' in matrix.table()
