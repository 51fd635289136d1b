"""The recovery table: the only way a step changes, and its documentation."""
from __future__ import annotations

import ast
import os
import pathlib

import pytest

from freezer_dr.engine import transitions
from freezer_dr.model import Step

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOC = ROOT / 'doc' / 'source' / 'recovery-states.rst'


def test_the_documented_diagram_is_generated_from_the_table():
    assert DOC.read_text() == transitions.render_rst(), (
        'doc/source/recovery-states.rst is out of date: run python -m '
        'freezer_dr.engine.transitions > doc/source/recovery-states.rst')


def test_a_change_not_in_the_table_raises():
    with pytest.raises(transitions.IllegalTransition, match='done -> '
                       'fencing'):
        transitions.check(Step.DONE, Step.FENCING, 'gates_open')
    with pytest.raises(transitions.IllegalTransition):
        transitions.check(Step.HELD, Step.ISOLATING, 'fence_verified')
    transitions.check('fencing', Step.ISOLATING, 'fence_verified')


def test_every_step_but_the_terminal_ones_can_end():
    """From every step some path of the table reaches done or failed."""
    reach = {s: {r.target for r in transitions.TABLE if r.source == s}
             for s in Step}
    for start in Step:
        seen, todo = set(), [start]
        while todo:
            step = todo.pop()
            if step in seen:
                continue
            seen.add(step)
            todo.extend(reach[step])
        assert seen & {Step.DONE, Step.FAILED}, start


def _step_assignments(path: pathlib.Path) -> list[str]:
    """``<x>.step = ...`` assignments outside the table's own users."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        targets = getattr(node, 'targets', None) or []
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Attribute) and name.attr == 'step':
                    found.append(f'{path.name}:{node.lineno}')
    return found


def test_steps_change_only_through_the_table():
    """Only the runner's transition() and the operator's reopen, both
    checked against the table, assign a record's step (model.py only
    turns a stored string back into a Step)."""
    engine = ROOT / 'freezer_dr'
    assigned = []
    for dirpath, _dirs, files in os.walk(engine):
        if 'simulator' in dirpath:
            continue
        for name in files:
            if name.endswith('.py'):
                assigned += _step_assignments(pathlib.Path(dirpath, name))
    files = sorted({a.split(':')[0] for a in assigned})
    assert files == ['model.py', 'operator_requests.py', 'recovery.py'], \
        assigned
    assert len(assigned) == 4, assigned    # model, reopen, cancel, runner
