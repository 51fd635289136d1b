"""Console script ``freezer-dr``: run one replica of the service.

``freezer-dr --config-file F`` joins the cluster, campaigns for the leader
lease and, while leading, runs the leader loop until SIGTERM.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

from oslo_config import cfg
from oslo_log import log as logging

from freezer_dr import config
from freezer_dr import exceptions

LOG = logging.getLogger(__name__)
PROG = 'freezer-dr'

CLI_OPTS = [
    cfg.BoolOpt('once', default=False,
                help='One-shot mode: take the leader lease, recover every '
                     'failed host to a terminal state, release the lease '
                     'and exit (0: nothing down or all recovered).'),
]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    config.quiet_library_warnings()
    conf = config.load(argv, PROG, cli_opts=CLI_OPTS)
    keepalive_interval = config.validate_or_exit(conf, PROG)
    from freezer_dr.engine import drivers
    try:
        drivers.validate(conf)
    except exceptions.ConfigError as error:
        raise config.fail(PROG, str(error))
    if conf.once:
        from freezer_dr.engine import oneshot
        # stdout carries the run's report; log lines go to stderr
        conf.set_override('use_stderr', True)
        logging.setup(conf, config.PROJECT)
        return oneshot.run(conf, keepalive_interval, config.member_id(conf))
    from freezer_dr import service

    try:
        replica = service.Replica(conf, keepalive_interval)
    except exceptions.ConfigError as error:
        raise config.fail(PROG, str(error))
    except OSError as error:
        print(f'{PROG}: error: cannot listen on [api] '
              f'{conf.api.bind_host}:{conf.api.bind_port}: {error}',
              file=sys.stderr)
        return 1
    return replica.run()


if __name__ == '__main__':
    sys.exit(main())
