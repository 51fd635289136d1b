"""Packaging: pbr builds from pyproject.toml; entry points are registered."""
from __future__ import annotations

import configparser
import importlib.metadata
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def declared_entry_points() -> set[tuple[str, str, str]]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / 'setup.cfg')
    found = set()
    for group, lines in parser['entry_points'].items():
        for line in filter(None, map(str.strip, lines.splitlines())):
            name, value = (part.strip() for part in line.split('=', 1))
            found.add((group, name, value))
    return found


def test_pyproject_uses_the_pbr_backend():
    tomllib = pytest.importorskip('tomllib')
    with open(ROOT / 'pyproject.toml', 'rb') as f:
        build = tomllib.load(f)['build-system']
    assert build['build-backend'] == 'pbr.build'
    assert sorted(build['requires']) == ['pbr>=6.0.0', 'setuptools>=64.0.0']


def test_every_declared_entry_point_is_registered_and_loads():
    declared = declared_entry_points()
    groups = {group for group, _, _ in declared}
    assert {'console_scripts', 'oslo.config.opts', 'freezer_dr.monitors',
            'freezer_dr.fencers', 'freezer_dr.evacuators',
            'freezer_dr.notifiers'} <= groups
    dist = importlib.metadata.distribution('freezer-dr')
    registered = {(ep.group, ep.name, ep.value) for ep in dist.entry_points
                  if ep.group in groups}
    assert registered == declared, (
        'installed entry points differ from setup.cfg: re-run '
        "pip install -e . (missing: "
        f'{sorted(declared - registered)}, stale: '
        f'{sorted(registered - declared)})')
    for ep in dist.entry_points:
        if ep.group in groups:
            assert callable(ep.load()), ep
