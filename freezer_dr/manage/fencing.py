"""``freezer-dr-manage fencing status|check``: is every host fenceable?

``status`` shows the leader's latest readiness checks (from etcd);
``check`` reads every fencing level of the given hosts now, from where the
operator is: power reads only, never a power command.
"""
from __future__ import annotations

import time

from freezer_dr import cloud
from freezer_dr import exceptions
from freezer_dr import plugins
from freezer_dr.engine import drivers
from freezer_dr.engine import preflight
from freezer_dr.manage import context
from freezer_dr.manage import output


def register(subparsers) -> None:
    parser = subparsers.add_parser('fencing', help='Fencing readiness of '
                                   'the compute hosts.')
    sub = parser.add_subparsers(dest='fencing_command', required=True)
    status = sub.add_parser('status', help='The leader\'s latest readiness '
                            'check of every host.')
    output.add_format_option(status)
    status.set_defaults(func=show_status)
    check = sub.add_parser('check', help='Read the power state of every '
                           'fencing level now (never a power command).')
    check.add_argument('hosts', nargs='*', metavar='HOST',
                       help='Hosts to check (default: the whole inventory).')
    output.add_format_option(check)
    check.set_defaults(func=check_now)


def _rows(found: dict[str, dict]) -> list[list]:
    rows = []
    for host, result in sorted(found.items()):
        for level in result.get('levels') or [{}]:
            rows.append([host, 'yes' if result.get('ready') else 'NO',
                         f'{level.get("index", "-")} '
                         f'{level.get("driver", "")}'.strip(),
                         level.get('power'), level.get('error') or '',
                         time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(
                             result.get('checked_at', 0)))])
    return rows


def _print(found: dict[str, dict], fmt: str) -> None:
    if fmt != 'table':
        print(output.dump({'summary': preflight.summary_line(found),
                           'hosts': found}, fmt))
        return
    print(preflight.summary_line(found))
    if found:
        print(output.table(['host', 'ready', 'level', 'power', 'error',
                            'checked'], _rows(found)))


def show_status(conf, args) -> int:
    ctx = context.from_config(conf)
    _print(preflight.results(ctx.store), args.output_format)
    return 0


def check_now(conf, args) -> int:
    """Exit 0 when every checked host is ready, 1 otherwise."""
    inventory = drivers.load_inventory(conf, lambda host: None)
    hosts = args.hosts or inventory.hosts()
    unknown = [h for h in hosts if h not in inventory]
    if unknown:
        print(f'not in the fencing inventory {inventory.path}: '
              f'{", ".join(unknown)}')
        return 1
    nova = _NovaView(conf)
    timeout = 2 * conf.fencing.call_timeout
    found = {h: preflight.check_host(h, inventory.levels(h), timeout,
                                     nova.alive_after(h)) for h in hosts}
    _print(found, args.output_format)
    return 0 if all(r['ready'] for r in found.values()) else 1


class _NovaView:
    """Nova as seen from the operator's seat, for the OFF-while-up
    inventory check (skipped, with a note, when Nova cannot be read)."""

    def __init__(self, conf) -> None:
        self.interval = conf.monitor_nova.report_interval
        self.monitor = None
        try:
            monitor_cls = drivers.plugin(plugins.MONITORS,
                                         conf.monitor.driver,
                                         '[monitor] driver')
            self.monitor = monitor_cls.from_config(conf, cloud.connect(conf))
        except (exceptions.ConfigError, exceptions.CloudUnavailable) as e:
            print(f'note: Nova not read ({e}): the OFF-while-up inventory '
                  f'check is skipped')

    def _stamp(self, host: str) -> tuple[str, str | None] | None:
        try:
            found = {o.host: o for o in self.monitor.hosts()}.get(host)
        except exceptions.MonitorUnavailable as error:
            print(f'note: Nova not read ({error})')
            return None
        return (found.state, found.updated_at) if found else None

    def alive_after(self, host: str):
        """Whether ``host`` heartbeats twice after its BMC read OFF."""
        if self.monitor is None:
            return None
        first = self._stamp(host)
        if first is None or first[0] != 'up':
            return None

        def alive() -> bool:
            seen = {first[1]}
            until = time.monotonic() + 3.5 * self.interval
            while time.monotonic() < until:
                time.sleep(min(2.0, self.interval / 2))
                now = self._stamp(host)
                if now is None:
                    return False
                seen.add(now[1])
                if len(seen) >= 3:
                    return True
            return False
        return alive
