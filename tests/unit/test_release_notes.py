"""Release notes (reno): every note is valid YAML with known sections."""
from __future__ import annotations

import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTES = ROOT / 'releasenotes' / 'notes'
# reno's default sections; 'prelude' is one string, the others lists.
SECTIONS = {'prelude', 'features', 'issues', 'upgrade', 'deprecations',
            'critical', 'security', 'fixes', 'other'}
# reno new SLUG writes SLUG-<16 hex digits>.yaml
NAME = re.compile(r'^[a-z0-9][a-z0-9-]*-[0-9a-f]{16}\.yaml$')


def problems_of(name: str, text: str) -> list[str]:
    """What is wrong with one note (empty when nothing)."""
    found = []
    if not NAME.match(name):
        found.append(f'{name}: name it SLUG-<16 hex>.yaml '
                     f'(reno new SLUG does)')
    try:
        note = yaml.safe_load(text)
    except yaml.YAMLError as error:
        return found + [f'{name}: not valid YAML: {error}']
    if not isinstance(note, dict) or not note:
        return found + [f'{name}: a note is a mapping of sections']
    for section, entries in note.items():
        if section not in SECTIONS:
            found.append(f'{name}: unknown section {section!r} (one of '
                         f'{", ".join(sorted(SECTIONS))})')
        elif section == 'prelude':
            if not isinstance(entries, str) or not entries.strip():
                found.append(f'{name}: prelude is one non-empty string')
        elif (not isinstance(entries, list) or not entries
              or not all(isinstance(e, str) and e.strip() for e in entries)):
            found.append(f'{name}: {section} is a list of non-empty '
                         f'strings')
    return found


def notes() -> list[pathlib.Path]:
    return sorted(p for p in NOTES.iterdir() if not p.name.startswith('.'))


def test_there_are_notes():
    assert len(notes()) >= 10


@pytest.mark.parametrize('path', notes(), ids=lambda p: p.name)
def test_note_is_valid(path):
    assert problems_of(path.name, path.read_text()) == []


@pytest.mark.parametrize('name, text, expected', [
    ('a-0123456789abcdef.yaml', 'features:\n  - |\n    x\n', None),
    ('a.yaml', 'features:\n  - x\n', 'name it SLUG'),
    ('a-0123456789abcdef.yaml', 'features: [x\n', 'not valid YAML'),
    ('a-0123456789abcdef.yaml', 'feature:\n  - x\n', "unknown section"),
    ('a-0123456789abcdef.yaml', 'fixes: x\n', 'list of non-empty'),
    ('a-0123456789abcdef.yaml', 'fixes:\n  - ""\n', 'list of non-empty'),
    ('a-0123456789abcdef.yaml', 'prelude:\n  - x\n', 'one non-empty'),
    ('a-0123456789abcdef.yaml', '- x\n', 'mapping of sections'),
])
def test_bad_notes_are_named(name, text, expected):
    found = problems_of(name, text)
    if expected is None:
        assert found == []
    else:
        assert any(expected in p for p in found), found
