"""Sphinx directive ``freezer-dr-cli PROG``: a command's reference page
built from its own argument parser, subcommands included.

The parser is the one the console script really builds: its ``main`` is
called with ``argparse.ArgumentParser.parse_args`` replaced by a stub that
hands the parser back before anything is parsed (oslo.config programs
included, with their sub-commands and logging options).
"""
from __future__ import annotations

import argparse
import importlib.metadata
import re
import typing as t

DISTRIBUTION = 'freezer-dr'
# argparse's own ``-h/--help`` is on every parser: said once, not listed.
_HIDDEN = (argparse._HelpAction, argparse._VersionAction)


class ParserCaptured(Exception):
    """Raised from the stubbed ``parse_args`` with the parser in hand."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        super().__init__(parser.prog)
        self.parser = parser


def console_scripts() -> dict[str, importlib.metadata.EntryPoint]:
    """The console scripts the freezer-dr distribution installs."""
    dist = importlib.metadata.distribution(DISTRIBUTION)
    return {ep.name: ep for ep in dist.entry_points
            if ep.group == 'console_scripts'}


def capture_parser(main: t.Callable[..., t.Any]) -> argparse.ArgumentParser:
    """The parser ``main([])`` builds, caught at its first parse."""
    def stub(self, args=None, namespace=None):
        raise ParserCaptured(self)

    original = argparse.ArgumentParser.parse_args
    argparse.ArgumentParser.parse_args = stub
    try:
        main([])
    except ParserCaptured as caught:
        return caught.parser
    finally:
        argparse.ArgumentParser.parse_args = original
    raise RuntimeError(f'{main.__module__}.main parsed no arguments')


def parser_of(prog: str) -> argparse.ArgumentParser:
    scripts = console_scripts()
    if prog not in scripts:
        raise KeyError(f'{prog} is not a console script of {DISTRIBUTION} '
                       f'(known: {", ".join(sorted(scripts))})')
    parser = capture_parser(scripts[prog].load())
    parser.prog = prog
    return parser


def subcommands(parser: argparse.ArgumentParser
                ) -> list[tuple[str, argparse.ArgumentParser, str]]:
    """(name, parser, help) of each subcommand, in the parser's order."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or '' for a in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((name, sub, helps.get(name, '')))
    return found


def command_paths(prog: str, parser: argparse.ArgumentParser) -> list[str]:
    """Every command line reachable: ``prog``, ``prog sub``, ..."""
    paths = [prog]
    for name, sub, _ in subcommands(parser):
        paths.extend(command_paths(f'{prog} {name}', sub))
    return paths


def escape(text: str) -> str:
    """Plain text safe inside reStructuredText."""
    return re.sub(r'([\\*`|_])', r'\\\1', text)


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = parser._get_formatter()._expand_help(action) if action.help else ''
    return ' '.join(text.split())


def _signature(action: argparse.Action) -> str:
    """``--opt METAVAR`` / ``-f FORMAT, --format FORMAT`` / ``host``."""
    if not action.option_strings:
        return action.metavar or action.dest
    if action.nargs == 0:
        return ', '.join(action.option_strings)
    metavar = action.metavar or (
        '{' + ','.join(map(str, action.choices)) + '}' if action.choices
        else action.dest.upper())
    if action.nargs == '?':
        metavar = f'[{metavar}]'
    elif action.nargs in ('*', '+'):
        metavar = f'{metavar} [...]'
    return ', '.join(f'{opt} {metavar}' for opt in action.option_strings)


def _details(action: argparse.Action, help_text: str) -> list[str]:
    """What the help text does not say already: choices hidden behind a
    metavar, required, the default."""
    details = []
    if action.choices and action.metavar:
        details.append('One of: ' + ', '.join(
            f'``{c}``' for c in action.choices) + '.')
    if action.required and action.option_strings:
        details.append('Required.')
    default = action.default
    if (action.option_strings and action.nargs != 0
            and default not in (None, argparse.SUPPRESS, [], '')
            and 'default' not in help_text.lower()):
        details.append(f'Default: ``{default}``.')
    return details


def _underline(title: str, level: int) -> list[str]:
    return [title, '-~^"'[level] * len(title), '']


def render(prog: str, parser: argparse.ArgumentParser,
           level: int = 0) -> list[str]:
    """The reference of ``prog`` as reStructuredText lines.

    Subcommands get sections one level below (``-``, ``~``, ``^``), so the
    page's own title sits above them.
    """
    lines = []
    if level:
        lines += _underline(prog, level - 1)
    lines += [f'.. program:: {prog}', '', '.. code-block:: text', '']
    prefix = 'usage: '
    usage = parser.format_usage().rstrip().splitlines()
    usage = [usage[0][len(prefix):]] + [u[len(prefix):] for u in usage[1:]]
    lines += ['   ' + line for line in usage] + ['']
    if parser.description and level == 0:
        lines += [escape(' '.join(parser.description.split())), '']
    positionals, options = [], []
    for action in parser._actions:
        if isinstance(action, _HIDDEN) or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._SubParsersAction):
            continue
        (options if action.option_strings else positionals).append(action)
    for kind, actions in (('Arguments', positionals), ('Options', options)):
        if not actions:
            continue
        lines += [f'.. rubric:: {kind}', '']
        for action in actions:
            lines += [f'.. option:: {_signature(action)}', '']
            help_text = _help(parser, action)
            body = [escape(help_text)] + _details(action, help_text)
            lines += ['   ' + ' '.join(part for part in body if part), '']
    subs = subcommands(parser)
    if subs:
        lines += ['.. rubric:: Commands', '']
        for name, _, help_text in subs:
            lines += [f'``{name}``', f'   {escape(help_text) or "-"}', '']
        for name, sub, help_text in subs:
            sub_lines = render(f'{prog} {name}', sub, level + 1)
            title_end = 3 if level + 1 else 0
            if help_text:
                sub_lines[title_end:title_end] = [escape(help_text), '']
            lines += sub_lines
    return lines


def setup(app: t.Any) -> dict[str, t.Any]:
    from docutils import nodes
    from docutils.statemachine import StringList
    from sphinx.util.docutils import SphinxDirective
    from sphinx.util.nodes import nested_parse_with_titles

    class CliDirective(SphinxDirective):
        """``.. freezer-dr-cli:: PROG``: the reference of PROG."""
        required_arguments = 1
        has_content = False

        def run(self) -> list[nodes.Node]:
            prog = self.arguments[0]
            try:
                parser = parser_of(prog)
            except (KeyError, RuntimeError, ImportError) as error:
                raise self.error(f'freezer-dr-cli {prog}: {error}')
            source = self.get_source_info()[0]
            text = StringList()
            for number, line in enumerate(render(prog, parser)):
                text.append(line, source, number)
            container = nodes.section()
            container.document = self.state.document
            nested_parse_with_titles(self.state, text, container)
            return container.children

    app.add_directive('freezer-dr-cli', CliDirective)
    return {'version': '1.0', 'parallel_read_safe': True,
            'parallel_write_safe': True}
