#!/usr/bin/env python3
"""Print the packages bindep.txt lists for a platform and profiles.

``bindep_packages.py [--file bindep.txt] PLATFORM [PROFILE ...]``, e.g.
``dpkg test libvirt``: one package per line, selected as bindep selects
them, without needing bindep itself (CI runs this before any pip install).
"""
from __future__ import annotations

import argparse
import re
import sys

# name [selector ...] [version constraints] [# comment]
_RULE = re.compile(r'^(?P<name>[A-Za-z0-9/][A-Za-z0-9.+_/-]+)'
                   r'(?:\s+\[(?P<selectors>[^\]]*)\])?'
                   r'(?P<version>\s+[<>=!][^#]*)?\s*(?:#.*)?$')


class BindepSyntaxError(ValueError):
    """A line bindep.txt's grammar does not allow (as far as we read it)."""


def parse(text: str, where: str = 'bindep.txt'
          ) -> list[tuple[str, list[tuple[bool, str]]]]:
    """Rules as (package, [(positive, selector), ...])."""
    rules = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        match = _RULE.match(line)
        if not match:
            raise BindepSyntaxError(f'{where}:{number}: cannot read {line!r}')
        selectors = []
        for token in (match.group('selectors') or '').split():
            if '(' in token or ')' in token:
                raise BindepSyntaxError(f'{where}:{number}: selector groups '
                                        f'are not supported: {line!r}')
            negative = token.startswith('!')
            selectors.append((not negative, token.lstrip('!')))
        rules.append((match.group('name'), selectors))
    return rules


def _vote(selectors: list[tuple[bool, str]], active: set[str]) -> bool | None:
    """bindep's vote of one kind of selector: None when there is none."""
    if not selectors:
        return None
    if any(not positive and name in active for positive, name in selectors):
        return False
    positives = [name for positive, name in selectors if positive]
    return not positives or any(name in active for name in positives)


def packages(rules: list[tuple[str, list[tuple[bool, str]]]], platform: str,
             profiles: list[str]) -> list[str]:
    """The packages active for ``platform:PLATFORM`` and the profiles."""
    active = {f'platform:{platform}', *(profiles or ['default'])}
    found = []
    for name, selectors in rules:
        platform_sel = [s for s in selectors if s[1].startswith('platform:')]
        user_sel = [s for s in selectors if not s[1].startswith('platform:')]
        votes = (_vote(platform_sel, active), _vote(user_sel, active))
        if False not in votes and name not in found:
            found.append(name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--file', default='bindep.txt')
    parser.add_argument('platform', help='dpkg or rpm')
    parser.add_argument('profiles', nargs='*', help='default: "default"')
    args = parser.parse_args(argv)
    try:
        with open(args.file) as f:
            rules = parse(f.read(), args.file)
    except (OSError, BindepSyntaxError) as error:
        print(f'{parser.prog}: error: {error}', file=sys.stderr)
        return 2
    print('\n'.join(packages(rules, args.platform, args.profiles)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
