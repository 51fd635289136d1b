"""Output formats shared by the manage commands: table, json, yaml."""
from __future__ import annotations

import argparse
import datetime
import json
import typing as t

import yaml

FORMATS = ('table', 'json', 'yaml')


def add_format_option(parser: argparse.ArgumentParser) -> None:
    """``-f/--format table|json|yaml`` (default table)."""
    parser.add_argument('-f', '--format', dest='output_format',
                        choices=FORMATS, default='table',
                        help='Output format (default: table).')


def dump(data: t.Any, fmt: str) -> str:
    """``data`` as JSON or YAML text."""
    if fmt == 'json':
        return json.dumps(data, indent=2, sort_keys=True)
    if fmt == 'yaml':
        return yaml.safe_dump(data, sort_keys=False,
                              default_flow_style=False).rstrip()
    raise ValueError(f'not a structured format: {fmt}')


def table(headers: list[str], rows: list[list[t.Any]]) -> str:
    """A plain aligned text table."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells])
              for i, h in enumerate(headers)]
    lines = ['  '.join(h.upper().ljust(w)
                       for h, w in zip(headers, widths, strict=True))]
    lines += ['  '.join(c.ljust(w) for c, w in zip(row, widths, strict=True))
              for row in cells]
    return '\n'.join(line.rstrip() for line in lines)


def _cell(value: t.Any) -> str:
    if value is None:
        return '-'
    if isinstance(value, float):
        return f'{value:.1f}'
    return str(value)


def wall_time(timestamp: float | None) -> str | None:
    """An ISO 8601 UTC time for a wall-clock timestamp."""
    if timestamp is None:
        return None
    return datetime.datetime.fromtimestamp(
        timestamp, tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def duration(seconds: float | None) -> str | None:
    """``1h02m``, ``3m05s`` or ``12.3s``."""
    if seconds is None:
        return None
    if seconds < 60:
        return f'{seconds:.1f}s'
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f'{minutes}m{secs:02d}s'
    hours, minutes = divmod(minutes, 60)
    return f'{hours}h{minutes:02d}m'
