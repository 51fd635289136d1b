"""Load a command's configuration: arguments + files, logging, validation.

Every console script calls :func:`load` to get a private, fully checked
``ConfigOpts``. A bad configuration never produces a traceback: the command
prints one line naming the file and option and exits with code 2.
"""
from __future__ import annotations

import re
import socket
import sys
import typing as t
import warnings
from collections.abc import Sequence

from oslo_config import cfg
from oslo_log import log as logging

from freezer_dr import conf as freezer_conf
from freezer_dr import exceptions

PROJECT = 'freezer-dr'
EXIT_CONFIG = 2

# oslo.config names the file as LocationInfo(..., detail='PATH')
_SOURCE = re.compile(r"detail='([^']+)'")


class ConfigExit(SystemExit):
    """Raised to end a command because of a bad configuration (code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_CONFIG)
        self.message = message


def quiet_library_warnings() -> None:
    """Hide import-time deprecation noise of libraries we do not use.

    tooz imports futurist, which imports eventlet (not used: freezer-dr
    runs native threads) and warns on every command line.
    """
    warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')


def fail(prog: str, message: str) -> ConfigExit:
    """Print ``prog: error: message`` on stderr; return the exit to raise."""
    print(f'{prog}: error: {message}', file=sys.stderr)
    return ConfigExit(message)


def _describe_value_error(group: str | None, name: str,
                          error: Exception) -> str:
    text = str(error)
    detail = text.split(' is not valid: ', 1)[-1]
    source = _SOURCE.search(text)
    where = f'{source.group(1)}: ' if source else ''
    return f'{where}[{group or "DEFAULT"}] {name}: invalid value: {detail}'


def check_values(conf: cfg.ConfigOpts) -> None:
    """Read every registered option so type errors surface now, not later.

    oslo.config converts values lazily; a typo in a rarely used option
    would otherwise crash the service hours after start-up.
    """
    for key in conf.keys():
        value = _read(conf, conf, None, key)
        if isinstance(value, cfg.ConfigOpts.GroupAttr):
            for name in value.keys():
                _read(conf, value, key, name)


def _read(conf: cfg.ConfigOpts, namespace: object, group: str | None,
          name: str) -> object:
    try:
        return getattr(namespace, name)
    except (cfg.ConfigFileValueError, ValueError) as error:
        raise exceptions.ConfigError(
            _describe_value_error(group, name, error))


def load(argv: Sequence[str] | None, prog: str,
         cli_opts: Sequence[cfg.Opt] = (),
         setup_logging: bool = True) -> cfg.ConfigOpts:
    """Parse ``argv`` and the config files into a new ``ConfigOpts``.

    ``cli_opts`` are extra command-line options (e.g. ``--once`` or the
    manage subcommands). Raises :class:`ConfigExit` (code 2) with one clear
    line on stderr when the files are missing, unparsable or invalid.
    """
    conf = freezer_conf.new_config()
    logging.register_options(conf)
    conf.register_cli_opts(list(cli_opts))
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        conf(args=args, project=PROJECT, prog=prog)
        check_values(conf)
    except cfg.ConfigFilesNotFoundError as error:
        files = ', '.join(error.config_files)
        raise fail(prog, f'cannot read config file(s): {files}')
    except cfg.ConfigFileParseError as error:
        raise fail(prog, f'{error.config_file}: cannot parse: {error.msg}')
    except cfg.RequiredOptError as error:
        raise fail(prog, str(error))
    except exceptions.ConfigError as error:
        raise fail(prog, str(error))
    except cfg.Error as error:
        raise fail(prog, str(error))
    if setup_logging:
        if not conf.log_file:
            # stdout carries the command's output (JSON, tables): without
            # a log file, log lines go to stderr, never into it
            conf.set_override('use_stderr', True)
        logging.setup(conf, PROJECT)
    return conf


def member_id(conf: cfg.ConfigOpts) -> str:
    """This replica's identity: ``[coordination] member_id`` or host name."""
    return conf.coordination.member_id or socket.gethostname()


def validate_coordination(conf: cfg.ConfigOpts) -> float:
    """Check ``[coordination]``: backend URL and lease timing.

    Returns the effective keepalive interval; raises ``ConfigError``
    naming the option otherwise.
    """
    from freezer_dr.ha import timing

    coord = conf.coordination
    backend = validate_backend(conf, probe=False)
    if not coord.cluster or '/' in coord.cluster:
        raise exceptions.ConfigError(
            '[coordination] cluster must be a non-empty name without "/"')
    interval = timing.validate(coord.lease_ttl, coord.keepalive_interval,
                               coord.http_timeout, coord.poll_interval,
                               coord.safety_margin,
                               endpoints=len(backend.endpoints))
    timing.validate_handover(conf.engine.blind_handover_after,
                             coord.lease_ttl)
    return interval


def validate_backend(conf: cfg.ConfigOpts, probe: bool = True) -> t.Any:
    """Check ``[coordination] backend_url``: members and TLS files.

    With ``probe``, also ask each member for its version, so that a CA
    that does not match (or a refused client certificate) is a
    ``ConfigError`` naming the file now rather than an endless retry.
    Returns the parsed :class:`~freezer_dr.ha.endpoints.Backend`.
    """
    from freezer_dr.ha import endpoints

    backend = endpoints.parse(conf.coordination.backend_url)
    endpoints.check_tls_files(backend)
    if probe and backend.tls:
        endpoints.probe_tls(backend, conf.coordination.http_timeout)
    return backend


def validate_or_exit(conf: cfg.ConfigOpts, prog: str) -> float:
    """:func:`validate_coordination` and the TLS probe of every member,
    turning ``ConfigError`` into exit 2."""
    try:
        interval = validate_coordination(conf)
        validate_backend(conf, probe=True)
        return interval
    except exceptions.ConfigError as error:
        raise fail(prog, str(error))
