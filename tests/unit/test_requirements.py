"""Every third-party import of freezer_dr/ is declared where it is needed.

Runtime modules may import only what ``requirements.txt`` declares; the
simulator / demo and the libvirt fencer may also import their extra's
packages (``setup.cfg`` ``[extras]``). Imports are found by walking each
module's AST and mapped to distributions with
``importlib.metadata.packages_distributions``.
"""
from __future__ import annotations

import ast
import configparser
import functools
import importlib.metadata
import pathlib
import re
import sys
from collections.abc import Callable

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / 'freezer_dr'

# Modules (paths relative to the checkout, a trailing '/' for a whole
# package) that run only with an extra installed, and that extra.
EXTRA_MODULES = {
    'freezer_dr/simulator/': 'simulator',
    'freezer_dr/demo/': 'simulator',
    'freezer_dr/cmd/sim.py': 'simulator',
    'freezer_dr/cmd/demo.py': 'simulator',
    'freezer_dr/fencers/libvirt.py': 'libvirt',
}

# Import names whose distribution the default test environment (tox's
# ``test`` extra) does not install, so packages_distributions() cannot
# name it. Nothing else may be missing: an import that maps to no
# installed distribution is undeclared until proven otherwise.
NOT_ALWAYS_INSTALLED = {
    'libvirt': 'libvirt-python',
}


def normalize(name: str) -> str:
    """PEP 503 normal form of a distribution name."""
    return re.sub(r'[-_.]+', '-', name).lower()


def requirement_name(line: str) -> str | None:
    line = line.split('#', 1)[0].strip()
    if not line or line.startswith('-'):
        return None
    match = re.match(r'[A-Za-z0-9][A-Za-z0-9._-]*', line)
    assert match, f'unreadable requirement {line!r}'
    return normalize(match.group(0))


def runtime_requirements() -> set[str]:
    text = (ROOT / 'requirements.txt').read_text()
    return {n for n in map(requirement_name, text.splitlines()) if n}


def extras() -> dict[str, set[str]]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / 'setup.cfg')
    return {extra: {n for n in map(requirement_name, value.splitlines())
                    if n}
            for extra, value in parser['extras'].items()}


def extra_of(relpath: str) -> str | None:
    for prefix, extra in EXTRA_MODULES.items():
        if relpath == prefix or (prefix.endswith('/')
                                 and relpath.startswith(prefix)):
            return extra
    return None


def top_level_imports(tree: ast.AST) -> set[str]:
    """Absolute imports of a module (at any depth, optional ones too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split('.')[0] for alias in node.names)
        elif (isinstance(node, ast.ImportFrom) and node.level == 0
              and node.module):
            found.add(node.module.split('.')[0])
    return found


def third_party(names: set[str]) -> set[str]:
    return {n for n in names
            if n not in sys.stdlib_module_names and n != 'freezer_dr'
            and n != '__future__'}


def modules() -> list[pathlib.Path]:
    found = sorted(PACKAGE.rglob('*.py'))
    assert len(found) > 50, f'expected the freezer_dr package in {PACKAGE}'
    return found


@functools.cache
def installed() -> dict[str, list[str]]:
    """Import name -> distributions providing it."""
    return importlib.metadata.packages_distributions()


def distributions_of(name: str) -> set[str]:
    mapping = installed()
    dists = {normalize(d) for d in mapping.get(name, [])}
    if name in NOT_ALWAYS_INSTALLED:
        dists.add(normalize(NOT_ALWAYS_INSTALLED[name]))
    return dists


def undeclared_imports(
        read: Callable[[pathlib.Path], str] = pathlib.Path.read_text,
) -> list[str]:
    """One line per import that no allowed requirement list declares."""
    runtime = runtime_requirements()
    extra_lists = extras()
    problems = []
    for path in modules():
        relpath = path.relative_to(ROOT).as_posix()
        extra = extra_of(relpath)
        allowed = runtime | (extra_lists.get(extra, set()) if extra
                             else set())
        where = ('requirements.txt' + (f' or the [{extra}] extra'
                                       if extra else ''))
        tree = ast.parse(read(path), filename=relpath)
        for name in sorted(third_party(top_level_imports(tree))):
            dists = distributions_of(name)
            if not dists:
                problems.append(f'{relpath}: import {name}: no installed '
                                f'distribution provides it; declare it in '
                                f'{where}')
            elif not dists & allowed:
                problems.append(f'{relpath}: import {name} '
                                f'({", ".join(sorted(dists))}) is not '
                                f'declared in {where}')
    return problems


def test_every_third_party_import_is_declared():
    problems = undeclared_imports()
    assert not problems, '\n'.join(problems)


def test_runtime_modules_do_not_import_extra_only_modules():
    """A runtime module importing the simulator would need its extra."""
    problems = []
    for path in modules():
        relpath = path.relative_to(ROOT).as_posix()
        if extra_of(relpath):
            continue
        tree = ast.parse(path.read_text(), filename=relpath)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0
                    and (node.module or '').startswith('freezer_dr')):
                continue
            targets = [node.module] + [f'{node.module}.{a.name}'
                                       for a in node.names]
            for target in targets:
                as_path = target.replace('.', '/')
                for candidate in (as_path + '.py', as_path + '/'):
                    extra = extra_of(candidate)
                    if extra:
                        problems.append(f'{relpath}: imports {target} '
                                        f'(needs the [{extra}] extra)')
    assert not problems, '\n'.join(sorted(set(problems)))


def test_every_extra_named_for_modules_exists():
    declared = extras()
    for extra in set(EXTRA_MODULES.values()):
        assert extra in declared, f'setup.cfg has no [{extra}] extra'
    for prefix in EXTRA_MODULES:
        assert (ROOT / prefix).exists(), f'{prefix} does not exist'


def test_an_undeclared_import_is_caught():
    """The check itself: a module importing an undeclared package fails."""
    module = PACKAGE / 'engine' / 'selection.py'

    def with_extra_imports(path: pathlib.Path) -> str:
        text = path.read_text()
        if path == module:
            text += '\nimport pytest\nimport no_such_module_xyz\n'
        return text

    problems = undeclared_imports(with_extra_imports)
    assert any('freezer_dr/engine/selection.py: import pytest' in p
               and 'not declared in requirements.txt' in p
               for p in problems), problems
    assert any('import no_such_module_xyz: no installed distribution' in p
               for p in problems), problems


@pytest.mark.parametrize('relpath, extra', [
    ('freezer_dr/simulator/nova.py', 'simulator'),
    ('freezer_dr/cmd/sim.py', 'simulator'),
    ('freezer_dr/fencers/libvirt.py', 'libvirt'),
    ('freezer_dr/fencers/ipmi.py', None),
    ('freezer_dr/cmd/service.py', None),
])
def test_modules_map_to_their_extra(relpath, extra):
    assert extra_of(relpath) == extra


def test_the_test_extra_installs_what_the_simulator_needs():
    """tox's default env installs only the test extra, then runs the
    simulator's tests."""
    declared = extras()
    missing = declared['simulator'] - declared['test']
    assert not missing, (f'setup.cfg: add {sorted(missing)} to the [test] '
                         f'extra too (the simulator\'s tests need them)')


def test_test_requirements_match_the_test_extra():
    text = (ROOT / 'test-requirements.txt').read_text()
    listed = {n for n in map(requirement_name, text.splitlines()) if n}
    declared = extras()['test']
    assert listed == declared, (
        f'test-requirements.txt and setup.cfg [test] differ: only in the '
        f'file {sorted(listed - declared)}, only in the extra '
        f'{sorted(declared - listed)}')
