"""Console script ``freezer-dr-manage``: operator commands against etcd.

``freezer-dr-manage --config-file F COMMAND ...``; the commands live in
:mod:`freezer_dr.manage` (one module per family). Exit codes: 0 done,
1 etcd unreachable or the command failed, 2 bad configuration or usage.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from freezer_dr import config
from freezer_dr import exceptions
from freezer_dr import manage

PROG = 'freezer-dr-manage'


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    config.quiet_library_warnings()
    conf = config.load(argv, PROG, cli_opts=[manage.command_opt()])
    try:
        config.validate_backend(conf)
        return int(conf.command.func(conf, conf.command))
    except exceptions.ConfigError as error:
        raise config.fail(PROG, str(error))
    except exceptions.StoreUnavailable as error:
        print(f'{PROG}: error: etcd unreachable at '
              f'{conf.coordination.backend_url}: {error}', file=sys.stderr)
        return 1
    except exceptions.FreezerDRError as error:
        print(f'{PROG}: error: {error}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
