"""Subcommands of ``freezer-dr-manage``, one module per command family.

Every module of this package that defines ``register(subparsers)``
is picked up automatically: ``register`` adds its argparse sub-parser(s)
and sets ``func=handler`` on each, where ``handler(conf, args) -> int``
returns the exit code. Adding ``recovery.py`` or ``host.py`` here needs no
change anywhere else.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import typing as t

from oslo_config import cfg

Handler = t.Callable[[cfg.ConfigOpts, t.Any], int]


def command_modules() -> list[t.Any]:
    """The subcommand modules of this package, sorted by name."""
    modules = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith('_'):
            continue
        module = importlib.import_module(f'{__name__}.{info.name}')
        if callable(getattr(module, 'register', None)):
            modules.append(module)
    return modules


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """oslo.config sub-command handler: let every module register."""
    subparsers.required = True
    for module in command_modules():
        module.register(subparsers)


def command_opt() -> cfg.SubCommandOpt:
    """The ``command`` CLI option carrying the chosen subcommand."""
    return cfg.SubCommandOpt('command', title='Commands',
                             help='Run "COMMAND --help" for its options.',
                             handler=add_commands)
