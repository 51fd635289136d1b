"""Config files for the demo's and the tests' replicas: read a cloud's
``freezer-dr.conf``, lay options over it, write it back.

Sections are ``{section: {option: value}}``; a value of None is left out,
booleans are written ``true``/``false`` and lists comma-separated.
"""
from __future__ import annotations

import configparser
import typing as t

Sections = dict[str, dict[str, t.Any]]


def read_sections(path: str) -> Sections:
    """Every section of an ini file, ``[DEFAULT]`` included, as written."""
    parser = configparser.RawConfigParser(default_section='__none__')
    parser.optionxform = str
    parser.read(path)
    return {s: dict(parser.items(s)) for s in parser.sections()}


def merge(base: Sections, *extras: Sections | None) -> Sections:
    """``base`` with each extra's options added or replaced, per section."""
    merged = {name: dict(options) for name, options in base.items()}
    for extra in extras:
        for name, options in (extra or {}).items():
            merged.setdefault(name, {}).update(options)
    return merged


def write_config(path: str, sections: Sections) -> str:
    """Write an ini file from ``sections``; returns ``path``."""
    lines = []
    for section, options in sections.items():
        lines.append(f'[{section}]')
        for name, value in options.items():
            if value is None:
                continue
            if isinstance(value, bool):
                value = 'true' if value else 'false'
            elif isinstance(value, (list, tuple)):
                value = ','.join(str(v) for v in value)
            lines.append(f'{name} = {value}')
        lines.append('')
    with open(path, 'w') as f:
        f.write('\n'.join(lines))
    return path


def over_cloud(cloud_config: str, path: str, *extras: Sections | None) -> str:
    """Write ``path``: the cloud's config file with ``extras`` laid over."""
    return write_config(path, merge(read_sections(cloud_config), *extras))
