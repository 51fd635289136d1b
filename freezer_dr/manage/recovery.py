"""``freezer-dr-manage recovery list|show|retry|cancel``: live and past."""
from __future__ import annotations

import time

from freezer_dr.manage import context
from freezer_dr.manage import output
from freezer_dr.model import InstanceState
from freezer_dr.model import RecoveryRecord
from freezer_dr.model import Step


def register(subparsers) -> None:
    parser = subparsers.add_parser('recovery', help='Inspect or retry '
                                   'host recoveries.')
    sub = parser.add_subparsers(dest='recovery_command', required=True)
    listing = sub.add_parser('list', help='Live recoveries and recent '
                             'history.')
    listing.add_argument('--limit', type=int, default=20,
                         help='How many finished recoveries to show.')
    output.add_format_option(listing)
    listing.set_defaults(func=list_recoveries)
    show = sub.add_parser('show', help='One recovery with per-step and '
                          'per-instance progress.')
    show.add_argument('recovery_id', help='Recovery id (or a host name '
                      'for its live recovery).')
    output.add_format_option(show)
    show.set_defaults(func=show_recovery)
    retry = sub.add_parser('retry', help='Run a failed or held recovery '
                           'again (from fencing).')
    retry.add_argument('recovery_id', help='Recovery id.')
    retry.set_defaults(func=retry_recovery)
    cancel = sub.add_parser('cancel', help='Close a recovery that has not '
                            'fenced its host yet (confirmed or held); '
                            'admins are told.')
    cancel.add_argument('recovery_id', help='Recovery id (or a host name '
                        'for its live recovery).')
    cancel.add_argument('--reason', required=True,
                        help='Why: kept in the record and the alert.')
    cancel.set_defaults(func=cancel_recovery)


def _progress(record: RecoveryRecord) -> str:
    counted = [i for i in record.instances
               if i.state != InstanceState.SKIPPED]
    done = sum(1 for i in counted if i.state == InstanceState.DONE)
    failed = sum(1 for i in counted if i.state == InstanceState.FAILED)
    text = f'{done}/{len(counted)}'
    return text + (f' ({failed} failed)' if failed else '')


def _row(record: RecoveryRecord, live: bool) -> list:
    return [record.id, record.host, record.step, _progress(record),
            time.strftime('%Y-%m-%d %H:%M:%S',
                          time.localtime(record.created_at)),
            'live' if live else 'history', record.reason]


def list_recoveries(conf, args) -> int:
    ctx = context.from_config(conf)
    live = ctx.store.recoveries()
    past = ctx.store.history(limit=args.limit)
    if args.output_format != 'table':
        print(output.dump({'live': [r.to_dict() for r in live],
                           'history': [r.to_dict() for r in past]},
                          args.output_format))
        return 0
    rows = [_row(r, True) for r in live] + [_row(r, False) for r in past]
    print(output.table(['id', 'host', 'step', 'evacuated', 'started',
                        'where', 'reason'], rows))
    return 0


def _find(ctx, key: str) -> RecoveryRecord | None:
    """A recovery by id (or a host's live one); says so when there is none."""
    record = ctx.store.find(key) or ctx.store.get_recovery(key)
    if record is None:
        print(f'no recovery {key!r}')
    return record


def show_recovery(conf, args) -> int:
    ctx = context.from_config(conf)
    record = _find(ctx, args.recovery_id)
    if record is None:
        return 1
    if args.output_format != 'table':
        print(output.dump(record.to_dict(), args.output_format))
        return 0
    print(f'recovery {record.id}: host {record.host}, step {record.step}'
          + (f' ({record.reason})' if record.reason else ''))
    fence = record.fence or {}
    if fence:
        print(f'fence: {"ok" if fence.get("success") else "FAILED"} via '
              f'{fence.get("level")}, power {fence.get("power_state")}'
              f' {fence.get("detail") or ""}'.rstrip())
    print(output.table(['at', 'step', 'note'], [
        [time.strftime('%H:%M:%S', time.localtime(s['at'])), s['step'],
         s.get('note')] for s in record.steps]))
    if record.instances:
        print(output.table(
            ['instance', 'name', 'project', 'was', 'state', 'target',
             'attempts', 'error'],
            [[i.id, i.name, i.project_id, i.original_status, i.state,
              i.target_host, i.attempts, i.error]
             for i in record.instances]))
    return 0


def retry_recovery(conf, args) -> int:
    ctx = context.from_config(conf)
    record = _find(ctx, args.recovery_id)
    if record is None:
        return 1
    if record.step == Step.DONE:
        print(f'recovery {record.id} is done: nothing to retry')
        return 1
    ctx.store.request('retry', record.host, {
        'recovery_id': record.id, 'by': context.operator(),
        'at': time.time()})
    print(f'retry of recovery {record.id} (host {record.host}) requested; '
          'the leader picks it up on its next cycle')
    return 0


def cancel_recovery(conf, args) -> int:
    """Ask the leader to close a recovery before it fenced anything."""
    ctx = context.from_config(conf)
    record = _find(ctx, args.recovery_id)
    if record is None:
        return 1
    if record.terminal:
        print(f'recovery {record.id} already ended ({record.step})')
        return 1
    if record.step not in (Step.CONFIRMED, Step.HELD) or (
            record.fence or {}).get('success'):
        print(f'refused: recovery {record.id} of {record.host} is at '
              f'{record.step}, past a verified power-off or in the middle '
              f'of fencing; it can no longer be cancelled')
        return 1
    ctx.store.request('cancel', record.host, {
        'recovery_id': record.id, 'by': context.operator(),
        'reason': args.reason, 'at': time.time()})
    print(f'cancel of recovery {record.id} (host {record.host}) requested; '
          f'the leader closes it on its next cycle unless it has started '
          f'fencing by then')
    return 0
