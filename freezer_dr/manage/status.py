"""``freezer-dr-manage status``: who leads, who is alive, what is going on.

Reads etcd only (linearizable reads); works with no leader elected.
"""
from __future__ import annotations

import argparse
import sys
import time
import typing as t

from oslo_config import cfg

from freezer_dr import exceptions
from freezer_dr.engine import preflight
from freezer_dr.ha import etcd as ha_etcd
from freezer_dr.ha import members as ha_members
from freezer_dr.manage import context
from freezer_dr.manage import output


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        'status', help='Show the leader, members, pause flag and '
                       'recoveries of the cluster.')
    output.add_format_option(parser)
    parser.add_argument('--watch', nargs='?', type=float, const=2.0,
                        default=None, metavar='SECONDS',
                        help='Refresh every SECONDS (default 2) until '
                             'interrupted.')
    parser.add_argument('--history', type=int, default=10, metavar='N',
                        help='Finished recoveries to show (default 10).')
    parser.set_defaults(func=run)


def _leader(ctx: context.Context) -> dict[str, t.Any] | None:
    found = ctx.reader.read_leader()
    if found is None:
        return None
    since = found.get('since')
    remaining = found.get('ttl_remaining')
    return {
        'member_id': found.get('member_id'),
        'epoch': found.get('epoch'),
        'since': output.wall_time(since),
        'leading_for': output.duration(time.time() - since)
        if since else None,
        'lease_remaining': remaining,
        'host': found.get('host'),
        'pid': found.get('pid'),
        'api': found.get('api'),
    }


def _members(ctx: context.Context,
             leader_id: str | None) -> list[dict[str, t.Any]]:
    coord = ctx.conf.coordination
    found = ha_members.list_members(coord.backend_url, coord.cluster,
                                    coord.http_timeout)
    members = []
    for member in sorted(found, key=lambda m: str(m.get('member_id'))):
        member = dict(member)
        member['role'] = ('leader' if member.get('member_id') == leader_id
                          else 'standby')
        for key in ('started_at', 'cloud_seen_at', 'cloud_checked_at'):
            if isinstance(member.get(key), (int, float)):
                member[key] = output.wall_time(member[key])
        members.append(member)
    return members


def _recovery(record: t.Any, now: float) -> dict[str, t.Any]:
    return {'host': record.host, 'id': record.id, 'step': record.step,
            'age': round(now - record.created_at, 1),
            'epoch': record.epoch, 'reason': record.reason}


def _finished(record: t.Any) -> dict[str, t.Any]:
    return {'host': record.host, 'id': record.id, 'step': record.step,
            'reason': record.reason,
            'finished_at': output.wall_time(record.finished_at)}


def collect(ctx: context.Context, history: int = 10) -> dict[str, t.Any]:
    """The cluster status as plain data (the JSON/YAML output)."""
    members = ha_etcd.member_status(ctx.client)
    leader = _leader(ctx)
    now = time.time()
    paused = ctx.store.paused()
    if paused is not None:
        paused = dict(paused)
        if isinstance(paused.get('at'), (int, float)):
            paused['at'] = output.wall_time(paused['at'])
    return {
        'cluster': ctx.cluster,
        'backend_url': ha_etcd.redact_url(ctx.backend_url),
        'etcd': members,
        'leader': leader,
        'members': _members(ctx, leader['member_id'] if leader else None),
        'paused': paused,
        'fencing': preflight.summary_line(preflight.results(ctx.store)),
        'recoveries': [_recovery(r, now) for r in ctx.store.recoveries()],
        'history': [_finished(r) for r in ctx.store.history(history)],
    }


def render_table(status: dict[str, t.Any]) -> str:
    """Human-readable status."""
    lines = [f"cluster: {status['cluster']}  ({status['backend_url']})"]
    leader = status['leader']
    if leader is None:
        lines.append('leader:  none elected')
    else:
        lines.append(
            f"leader:  {leader['member_id']}  epoch {leader['epoch']}  "
            f"since {leader['since']} ({leader['leading_for']})  "
            f"lease {leader['lease_remaining']} s left")
    paused = status['paused']
    if paused is None:
        lines.append('paused:  no')
    else:
        lines.append(f"paused:  YES: {paused.get('reason')} "
                     f"(by {paused.get('by')} at {paused.get('at')})")
    lines.append(status['fencing'])
    lines += ['', 'etcd:', output.table(
        ['endpoint', 'reachable', 'raft_leader', 'raft_term', 'version',
         'error'],
        [[e['endpoint'], _yes_no(e['reachable']), _yes_no(e['leader']),
          e['raft_term'], e['version'], e.get('error')]
         for e in status['etcd']])]
    lines += ['', output.table(
        ['member', 'role', 'host', 'pid', 'api', 'version', 'started_at',
         'cloud_seen_at'],
        [[m.get('member_id'), m.get('role'), m.get('host'), m.get('pid'),
          m.get('api'), m.get('version'), m.get('started_at'),
          m.get('cloud_seen_at')]
         for m in status['members']])]
    lines += ['', 'live recoveries:' if status['recoveries']
              else 'live recoveries: none']
    if status['recoveries']:
        lines.append(output.table(
            ['host', 'id', 'step', 'age', 'reason'],
            [[r['host'], r['id'], r['step'], output.duration(r['age']),
              r['reason']] for r in status['recoveries']]))
    lines += ['', 'recent history:' if status['history']
              else 'recent history: none']
    if status['history']:
        lines.append(output.table(
            ['host', 'id', 'step', 'finished_at', 'reason'],
            [[r['host'], r['id'], r['step'], r['finished_at'], r['reason']]
             for r in status['history']]))
    return '\n'.join(lines)


def _yes_no(value: bool | None) -> str | None:
    return None if value is None else ('yes' if value else 'no')


def _show(ctx: context.Context, args: t.Any) -> None:
    status = collect(ctx, args.history)
    if args.output_format == 'table':
        print(render_table(status))
    else:
        print(output.dump(status, args.output_format))
    sys.stdout.flush()


def run(conf: cfg.ConfigOpts, args: t.Any) -> int:
    ctx = context.from_config(conf)
    if args.watch is None:
        _show(ctx, args)
        return 0
    interval = max(args.watch, 0.2)
    try:
        while True:
            try:
                _show(ctx, args)
            except exceptions.StoreUnavailable as error:
                print(f'etcd unreachable: {error}', file=sys.stderr)
            time.sleep(interval)
            print()
    except KeyboardInterrupt:
        return 0
