"""``freezer-dr-manage pause|resume``: stop or allow new recoveries.

The pause flag lives in etcd; the leader sees it on its next cycle and
fences nothing new while it is set.
"""
from __future__ import annotations

import argparse
import typing as t

from oslo_config import cfg

from freezer_dr.manage import context


def register(subparsers: argparse._SubParsersAction) -> None:
    pause = subparsers.add_parser(
        'pause', help='Pause the cluster: no new fencing or evacuation.')
    pause.add_argument('--reason', required=True,
                       help='Why (shown by status and in alerts).')
    pause.add_argument('--by', default=None,
                       help='Who pauses (default: user@host).')
    pause.set_defaults(func=run_pause)
    resume = subparsers.add_parser('resume', help='Clear the pause flag.')
    resume.set_defaults(func=run_resume)


def run_pause(conf: cfg.ConfigOpts, args: t.Any) -> int:
    ctx = context.from_config(conf)
    reason = args.reason.strip()
    if not reason:
        print('pause: --reason must not be empty')
        return 2
    before = ctx.store.paused()
    ctx.store.set_paused(reason, args.by or context.operator())
    if before is not None:
        print(f"cluster {ctx.cluster} was already paused "
              f"({before.get('reason')}); reason updated")
    else:
        print(f'cluster {ctx.cluster} paused: {reason}')
    return 0


def run_resume(conf: cfg.ConfigOpts, args: t.Any) -> int:
    ctx = context.from_config(conf)
    before = ctx.store.paused()
    ctx.store.clear_paused()
    if before is None:
        print(f'cluster {ctx.cluster} was not paused')
    else:
        print(f'cluster {ctx.cluster} resumed')
    return 0
