"""The generated CLI reference covers every command, subcommand, option."""
from __future__ import annotations

import argparse
import importlib.util
import pathlib
import re

import pytest

from freezer_dr import manage

ROOT = pathlib.Path(__file__).resolve().parents[2]
CLI_DOCS = ROOT / 'doc' / 'source' / 'cli'


def generator():
    spec = importlib.util.spec_from_file_location(
        'cli_reference', ROOT / 'doc' / 'ext' / 'cli_reference.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def walk(prog: str, parser: argparse.ArgumentParser):
    """(command line, parser) of the parser and all its subcommands,
    found without the generator's help."""
    yield prog, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk(f'{prog} {name}', sub)


def sections(rst: list[str]) -> dict[str, list[str]]:
    """Lines of the rendered page under each ``.. program::``."""
    found: dict[str, list[str]] = {}
    current = None
    for line in rst:
        match = re.match(r'\.\. program:: (.+)$', line)
        if match:
            current = match.group(1)
            found[current] = []
        elif current:
            found[current].append(line)
    return found


def programs() -> list[str]:
    return sorted(generator().console_scripts())


def test_the_four_commands_are_console_scripts():
    assert programs() == ['freezer-dr', 'freezer-dr-demo',
                          'freezer-dr-manage', 'freezer-dr-sim']


@pytest.mark.parametrize('prog', programs())
def test_every_command_has_a_page_in_the_toctree(prog):
    page = CLI_DOCS / f'{prog}.rst'
    assert page.is_file(), f'no {page}'
    assert f'.. freezer-dr-cli:: {prog}\n' in page.read_text()
    toctree = (CLI_DOCS / 'index.rst').read_text()
    assert re.search(rf'^   {re.escape(prog)}$', toctree, re.M), prog


def undocumented(prog: str, parser: argparse.ArgumentParser,
                 rendered: list[str]) -> list[str]:
    """Commands and arguments of ``parser`` the rendered page lacks."""
    documented = sections(rendered)
    missing = []
    for command, sub in walk(prog, parser):
        if command not in documented:
            missing.append(f'{command}: no section')
            continue
        options = ' '.join(line[len('.. option:: '):]
                           for line in documented[command]
                           if line.startswith('.. option:: '))
        for action in sub._actions:
            if (isinstance(action, (argparse._HelpAction,
                                    argparse._SubParsersAction))
                    or action.help == argparse.SUPPRESS):
                continue
            for name in (action.option_strings
                         or [action.metavar or action.dest]):
                if not re.search(rf'(^|[ ,]){re.escape(name)}([ ,]|$)',
                                 options):
                    missing.append(f'{command}: {name}')
    return missing


@pytest.mark.parametrize('prog', programs())
def test_every_subcommand_and_option_is_documented(prog):
    gen = generator()
    parser = gen.parser_of(prog)
    assert undocumented(prog, parser, gen.render(prog, parser)) == []


def test_a_missing_section_or_option_is_found():
    gen = generator()
    parser = gen.parser_of('freezer-dr-manage')
    rendered = gen.render('freezer-dr-manage', parser)
    cut = rendered.index('.. program:: freezer-dr-manage recovery cancel')
    without_cancel = rendered[:cut] + [
        line for line in rendered[cut:]
        if not line.startswith('.. program:: freezer-dr-manage recovery')]
    assert 'freezer-dr-manage recovery cancel: no section' in undocumented(
        'freezer-dr-manage', parser, without_cancel)
    without_reason = [line for line in rendered
                      if line != '.. option:: --reason REASON']
    assert 'freezer-dr-manage recovery cancel: --reason' in undocumented(
        'freezer-dr-manage', parser, without_reason)


def test_manage_reference_has_the_tree_manage_builds():
    """The captured parser is the one ``manage.add_commands`` builds."""
    expected = argparse.ArgumentParser(prog='freezer-dr-manage')
    manage.add_commands(expected.add_subparsers(dest='command'))
    built = [c for c, _ in walk('freezer-dr-manage', expected)]
    gen = generator()
    captured = gen.command_paths('freezer-dr-manage',
                                 gen.parser_of('freezer-dr-manage'))
    assert captured == built
    for command in ('fencing status', 'fencing check', 'host fenced',
                    'host enable', 'pause', 'resume', 'recovery list',
                    'recovery show', 'recovery retry', 'recovery cancel',
                    'status'):
        assert f'freezer-dr-manage {command}' in captured


def test_oslo_options_of_the_service_are_documented():
    gen = generator()
    rendered = '\n'.join(gen.render('freezer-dr', gen.parser_of('freezer-dr')))
    for option in ('--config-file PATH', '--config-dir DIR', '--once',
                   '--debug'):
        assert f'.. option:: {option}' in rendered


def test_subcommand_sections_nest_under_their_parent():
    parser = argparse.ArgumentParser(prog='tool')
    sub = parser.add_subparsers()
    one = sub.add_parser('one', help='First.')
    one.add_argument('--flag', help='A flag.')
    one.add_subparsers().add_parser('two')
    rendered = generator().render('tool', parser)
    assert set(sections(rendered)) == {'tool', 'tool one', 'tool one two'}
    title = rendered.index('tool one')
    assert rendered[title + 1] == '-' * len('tool one')
    assert rendered[title + 3] == 'First.'
    nested = rendered.index('tool one two')
    assert rendered[nested + 1] == '~' * len('tool one two')
    assert '.. option:: --flag FLAG' in rendered


def test_text_is_escaped_for_restructuredtext():
    assert generator().escape('a *b* `c` |d| e_') == (
        r'a \*b\* \`c\` \|d\| e\_')
