"""The fencing inventory (nodes.yaml): each compute host's fencing levels.

Format (DESIGN.md section 6)::

    nodes:
      compute-1:
        fencing:
          - {driver: ipmi, address: 10.0.0.11, port: 623, username: admin,
             password_file: /etc/freezer-dr/bmc/compute-1}
          - {driver: manual}

Every problem is a ConfigError naming the file, the host and the field.
A driver declares its fields as class attributes ``required``,
``optional``, ``secrets`` and ``paths``; a secret field ``X`` may be
given as ``X`` or read from ``X_file`` (relative paths are relative to
the inventory), and is held as a :class:`Secret` so it never shows in
repr or logs; a ``paths`` field (e.g. ``ca_file``) that is relative is
made relative to the inventory too.
"""
from __future__ import annotations

import os
import typing as t

import yaml
from oslo_log import log as logging

from freezer_dr import plugins
from freezer_dr.exceptions import ConfigError
from freezer_dr.fencers.base import Fencer
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.context import ManualConfirmation
from freezer_dr.fencers.context import Secret

LOG = logging.getLogger(__name__)


__all__ = ['FencingSettings', 'Inventory', 'load_inventory']


class Inventory:
    """Hosts and their fencing levels, built once at load."""

    def __init__(self, path: str, nodes: dict[str, list[Fencer]],
                 broken: dict[str, str] | None = None) -> None:
        self.path = path
        self._nodes = nodes
        #: hosts whose entry could not be built (lenient load): host -> why
        self.broken = dict(broken or {})

    def __repr__(self) -> str:
        return f'Inventory({self.path!r}, {len(self._nodes)} hosts)'

    def __contains__(self, host: object) -> bool:
        return host in self._nodes or host in self.broken

    def __len__(self) -> int:
        return len(self._nodes)

    def hosts(self) -> list[str]:
        return sorted(self._nodes)

    def levels(self, host: str) -> list[Fencer]:
        """The fencers of ``host`` in the order they are tried."""
        if host in self.broken:
            raise ConfigError(self.broken[host])
        if host not in self._nodes:
            raise KeyError(f'{host} is not in the fencing inventory '
                           f'{self.path}')
        return list(self._nodes[host])


class _Where:
    """Builds error messages that name the file, host and field."""

    def __init__(self, path: str, host: str | None = None,
                 level: str | None = None) -> None:
        self.path, self.host, self.level = path, host, level

    def error(self, field: str | None, problem: str) -> ConfigError:
        parts = [self.path]
        if self.host is not None:
            parts.append(f'host {self.host!r}')
        if self.level is not None:
            parts.append(self.level)
        if field is not None:
            parts.append(f'field {field!r}')
        return ConfigError(': '.join(parts + [problem]))


def _read_yaml(path: str) -> t.Any:
    try:
        with open(path, encoding='utf-8') as f:
            return yaml.safe_load(f)
    except OSError as exc:
        raise ConfigError(f'{path}: cannot read fencing inventory: '
                          f'{exc.strerror}') from None
    except yaml.YAMLError as exc:
        # only the position and the problem: the snippet may hold secrets
        mark = getattr(exc, 'problem_mark', None)
        where = f' at line {mark.line + 1}' if mark else ''
        problem = getattr(exc, 'problem', None) or 'syntax error'
        raise ConfigError(f'{path}: invalid YAML{where}: {problem}') from None


def _mapping(value: t.Any, where: _Where, field: str | None,
             allowed: t.Collection[str]) -> dict[str, t.Any]:
    if not isinstance(value, dict):
        raise where.error(field, 'must be a mapping')
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise where.error(unknown[0], f'unknown key (allowed: '
                                      f'{", ".join(sorted(allowed))})')
    return value


def _driver_class(name: t.Any, where: _Where) -> type[Fencer]:
    if not isinstance(name, str) or not name:
        raise where.error('driver', 'missing or not a string')
    try:
        return plugins.load_class(plugins.FENCERS, name)
    except plugins.UnknownPlugin as error:
        raise where.error('driver', f'unknown fencing driver {name!r}: '
                                    f'{error}') from None


def _read_secret(path: str, base: str, where: _Where, field: str) -> str:
    full = path if os.path.isabs(path) else os.path.join(base, path)
    try:
        with open(full, encoding='utf-8') as f:
            value = f.read().rstrip('\r\n')
    except OSError as exc:
        raise where.error(field, f'cannot read {full}: {exc.strerror}') \
            from None
    if not value:
        raise where.error(field, f'{full} is empty')
    return value


def _level_params(entry: dict[str, t.Any], cls: type[Fencer],
                  where: _Where, base: str) -> dict[str, t.Any]:
    """Check one level's keys and resolve its secrets."""
    required = tuple(getattr(cls, 'required', ()))
    optional = tuple(getattr(cls, 'optional', ()))
    secrets = tuple(getattr(cls, 'secrets', ()))
    allowed = {'driver', *required, *optional,
               *(f'{s}_file' for s in secrets)}
    _mapping(entry, where, None, allowed)
    params = {k: v for k, v in entry.items() if k != 'driver'}
    for name in secrets:
        file_key = f'{name}_file'
        if name in params and file_key in params:
            raise where.error(file_key, f'give {name!r} or {file_key!r}, '
                                        f'not both')
        if file_key in params:
            params[name] = _read_secret(str(params.pop(file_key)), base,
                                        where, file_key)
        if name in params:
            if not isinstance(params[name], str) or not params[name]:
                raise where.error(name, 'must be a non-empty string')
            params[name] = Secret(params[name])
    for name in required:
        if params.get(name) in (None, ''):
            hint = f' (or {name}_file)' if name in secrets else ''
            raise where.error(name, f'missing{hint}')
    for name in getattr(cls, 'paths', ()):
        value = params.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            raise where.error(name, 'must be a file path')
        if not os.path.isabs(value):
            params[name] = os.path.join(base, value)
    return params


def _host_levels(host: str, node: t.Any, path: str,
                 context: FenceContext) -> list[Fencer]:
    where = _Where(path, host)
    node = _mapping(node, where, None, ('fencing',))
    levels = node.get('fencing')
    if not isinstance(levels, list) or not levels:
        raise where.error('fencing', 'missing or empty: every host needs '
                                     'at least one fencing level')
    fencers = []
    for index, entry in enumerate(levels):
        level_where = _Where(path, host, f'fencing[{index}]')
        if not isinstance(entry, dict):
            raise level_where.error(None, 'must be a mapping')
        cls = _driver_class(entry.get('driver'), level_where)
        params = _level_params(entry, cls, level_where,
                               os.path.dirname(os.path.abspath(path)))
        try:
            fencers.append(cls(host, params, context=context))
        except (ValueError, TypeError, ConfigError) as exc:
            raise level_where.error(None, f'invalid: {exc}') from None
    return fencers


def load_inventory(path: str,
                   manual_confirmation: ManualConfirmation | None = None,
                   settings: FencingSettings | None = None,
                   strict: bool = True) -> Inventory:
    """Read, check and build the inventory; raise ConfigError on problems.

    ``manual_confirmation(host)`` is how manual levels learn that an
    operator confirmed ``host`` is off; ``settings`` bound every fencer.
    Not ``strict`` (a running leader): a host whose entry is broken (an
    unreadable password file, say) is kept in ``Inventory.broken`` and
    cannot be fenced, while every other host can.
    """
    data = _read_yaml(path)
    top = _mapping(data, _Where(path), None, ('nodes',))
    nodes = top.get('nodes')
    if not isinstance(nodes, dict) or not nodes:
        raise _Where(path).error('nodes', 'missing or empty')
    context = FenceContext(settings=settings or FencingSettings(),
                           manual_confirmation=manual_confirmation)
    built, broken = {}, {}
    for host, node in nodes.items():
        try:
            built[str(host)] = _host_levels(str(host), node, path, context)
        except ConfigError as error:
            if strict:
                raise
            broken[str(host)] = str(error)
            LOG.error('fencing inventory: %s', error)
    LOG.info('fencing inventory %s: %d hosts%s', path, len(built),
             f', {len(broken)} broken' if broken else '')
    return Inventory(path, built, broken)
