"""``freezer-dr-manage host fenced|enable``: the operator's part."""
from __future__ import annotations

import time

from freezer_dr import cloud
from freezer_dr import exceptions
from freezer_dr import plugins
from freezer_dr.engine import drivers
from freezer_dr.manage import context


def register(subparsers) -> None:
    parser = subparsers.add_parser('host', help='Operator actions on a '
                                   'compute host.')
    sub = parser.add_subparsers(dest='host_command', required=True)
    fenced = sub.add_parser('fenced', help='Confirm that HOST is powered '
                            'off, for its live recovery (the manual fencing '
                            'level).')
    fenced.add_argument('host', help='Compute host, as Nova names it.')
    fenced.add_argument('--recovery', metavar='ID',
                        help='Refuse unless this is the live recovery of '
                             'HOST.')
    fenced.set_defaults(func=confirm_fenced)
    enable = sub.add_parser('enable', help='Return a repaired HOST to '
                            'service: clear force-down and enable it.')
    enable.add_argument('host', help='Compute host, as Nova names it.')
    enable.set_defaults(func=enable_host)


def confirm_fenced(conf, args) -> int:
    """A confirmation names the live recovery of the host (S1)."""
    ctx = context.from_config(conf)
    record = ctx.store.get_recovery(args.host)
    if record is None:
        print(f'refused: no recovery of {args.host} is live; a '
              f'confirmation applies to one live recovery')
        return 1
    if args.recovery and args.recovery != record.id:
        print(f'refused: the live recovery of {args.host} is {record.id}, '
              f'not {args.recovery}')
        return 1
    ctx.store.request('fence-confirmed', args.host, {
        'by': context.operator(), 'at': time.time(),
        'recovery_id': record.id})
    print(f'{args.host} confirmed fenced for recovery {record.id}; the '
          f'leader accepts it on its next cycle, unless a BMC reads the '
          f'host ON or the recovery changes first (then confirm again)')
    return 0


def enable_host(conf, args) -> int:
    ctx = context.from_config(conf)
    record = ctx.store.get_recovery(args.host)
    if record is not None:
        print(f'refused: recovery {record.id} of {args.host} is live '
              f'(step {record.step}); wait for it to end')
        return 1
    evacuator_cls = drivers.plugin(plugins.EVACUATORS,
                                   conf.evacuation.driver,
                                   '[evacuation] driver')
    try:
        evacuator = evacuator_cls.from_config(conf, cloud.connect(conf))
        evacuator.enable(args.host)
    except (exceptions.CloudUnavailable, exceptions.EvacuationFailed) as e:
        print(f'could not enable {args.host}: {e}')
        return 1
    print(f'{args.host} is back in service (force-down cleared, enabled)')
    return 0
