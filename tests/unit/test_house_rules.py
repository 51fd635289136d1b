"""The house rules that a test can hold: the arrows between layers, and
the size of modules (doc/source/contributor/house-rules.rst)."""
from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2] / 'freezer_dr'
#: packages that must never import the engine (or, for ha/, Nova)
FLOORS = ('ha', 'monitors', 'fencers', 'evacuators', 'notifiers')
MAX_LINES = 400


def imports(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f'{node.module}.{a.name}' for a in node.names}
    return found


@pytest.mark.parametrize('package', FLOORS)
def test_no_arrow_from_a_lower_floor_into_the_engine(package):
    offenders = [str(p.relative_to(ROOT.parent))
                 for p in (ROOT / package).rglob('*.py')
                 if any(name == 'freezer_dr.engine'
                        or name.startswith('freezer_dr.engine.')
                        for name in imports(p))]
    assert offenders == []


def test_ha_knows_nothing_of_nova():
    offenders = [str(p.relative_to(ROOT.parent))
                 for p in (ROOT / 'ha').rglob('*.py')
                 if any(n.startswith(('openstack', 'novaclient',
                                      'freezer_dr.monitors',
                                      'freezer_dr.evacuators'))
                        for n in imports(p))]
    assert offenders == []


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT.parent)): n
            for top in ('freezer_dr', 'tests', 'tools')
            for p in (ROOT.parent / top).rglob('*.py')
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


@pytest.mark.parametrize('module', sorted(
    '.'.join(p.relative_to(ROOT.parent).with_suffix('').parts)
    for top in ('tests/benchmarks', 'tools')
    for p in (ROOT.parent / top).glob('*.py')))
def test_every_benchmark_and_tool_imports(module):
    """Benchmarks and tools run by hand, not in CI: a name they import
    that was renamed would otherwise go unseen until someone runs them."""
    importlib.import_module(module)


TESTS = ROOT.parent / 'tests'
#: the test tiers; what they share lives beside them in tests/ (harness
#: modules, tests/fixtures, tests/novabox), never inside another tier
TIERS = ('unit', 'functional', 'e2e', 'contract', 'realnova', 'chaos',
         'controllers', 'benchmarks')


@pytest.mark.parametrize('tier', TIERS)
def test_no_tier_imports_another_tier(tier):
    others = tuple(f'tests.{other}' for other in TIERS if other != tier)
    offenders = {str(p.relative_to(TESTS)): sorted(
                     n for n in imports(p)
                     if n in others or n.startswith(tuple(
                         f'{o}.' for o in others)))
                 for p in (TESTS / tier).rglob('*.py')}
    assert {k: v for k, v in offenders.items() if v} == {}
