"""bindep.txt: valid for bindep, and read the same way by CI's reader."""
from __future__ import annotations

import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINDEP = ROOT / 'bindep.txt'
# What the tiers need from the system (each named in a skip message or a
# build error when it is missing).
NEEDED_ON_DEBIAN = {
    ('libvirt',): {'libvirt-dev', 'pkg-config'},
    ('test',): {'ipmitool', 'libfaketime', 'iproute2'},
}
PROFILE_SETS = [[], ['test'], ['libvirt'], ['test', 'libvirt'], ['doc']]


def reader():
    spec = importlib.util.spec_from_file_location(
        'bindep_packages', ROOT / '.ci' / 'bindep_packages.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ci_installs_what_each_tier_needs():
    ci = reader()
    rules = ci.parse(BINDEP.read_text())
    for profiles, needed in NEEDED_ON_DEBIAN.items():
        found = set(ci.packages(rules, 'dpkg', list(profiles)))
        assert needed <= found, (profiles, needed - found)
    everything = ci.packages(rules, 'dpkg', ['test', 'libvirt'])
    assert 'libvirt-devel' not in everything     # an rpm name


def test_ci_run_installs_from_bindep():
    script = (ROOT / '.ci' / 'run').read_text()
    assert '.ci/bindep_packages.py dpkg test libvirt' in script


@pytest.mark.parametrize('line', [
    'libvirt-dev [platform:dpkg libvirt',
    'foo [(platform:dpkg test)]',
    '[test]',
])
def test_the_reader_rejects_what_it_cannot_read(line):
    ci = reader()
    with pytest.raises(ci.BindepSyntaxError, match='bindep.txt:1'):
        ci.parse(line + '\n')


@pytest.mark.parametrize('selectors, platform, profiles, included', [
    ('', 'dpkg', [], True),
    ('[test]', 'dpkg', [], False),
    ('[test]', 'dpkg', ['test'], True),
    ('[platform:rpm]', 'dpkg', ['test'], False),
    ('[platform:dpkg test]', 'dpkg', ['test'], True),
    ('[platform:dpkg test]', 'rpm', ['test'], False),
    ('[!platform:dpkg]', 'dpkg', [], False),
    ('[!test]', 'dpkg', ['default'], True),
    ('[!test]', 'dpkg', ['test'], False),
    ('[default]', 'dpkg', [], True),
])
def test_the_reader_selects_as_bindep(selectors, platform, profiles,
                                      included):
    ci = reader()
    rules = ci.parse(f'pkg {selectors} >=1.0 # a comment\n')
    assert (ci.packages(rules, platform, profiles) == ['pkg']) is included


def test_bindep_itself_reads_the_file_the_same_way():
    depends = pytest.importorskip('bindep.depends')
    ours = reader()
    text = BINDEP.read_text()
    theirs = depends.Depends(text)
    rules = ours.parse(text)
    for platform in ('dpkg', 'rpm'):
        for profiles in PROFILE_SETS:
            active = [f'platform:{platform}', *(profiles or ['default'])]
            expected = []
            for rule in theirs.active_rules(active):
                if rule[0] not in expected:
                    expected.append(rule[0])
            assert ours.packages(rules, platform, profiles) == expected, (
                platform, profiles)
