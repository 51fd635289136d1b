"""``freezer-dr-sim``: run the simulated cloud and drive it.

::

    freezer-dr-sim run --state-dir D --hosts 3 --instances 6 \
        [--bmc ipmi|redfish|mixed] [--cells 2]
    freezer-dr-sim --state-dir D status [-f json]
    freezer-dr-sim --state-dir D fail compute-1 --mode power|crash|partition
    freezer-dr-sim --state-dir D recover compute-1
    freezer-dr-sim --state-dir D boot vm-x --host compute-2 [--status SHUTOFF]
    freezer-dr-sim --state-dir D inject --latency nova=0.2 \
        --error-rate nova=0.1
    freezer-dr-sim --state-dir D inject --smtp-mode slow --smtp-delay 2
    freezer-dr-sim --state-dir D inject --down-cell cell2 | --up-cell cell2
    freezer-dr-sim --state-dir D power compute-1 [on|off]
"""
from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
import typing as t
import urllib.error
import urllib.request

from oslo_config import cfg
from oslo_log import log as logging

from freezer_dr.simulator.runner import BMC_CHOICES
from freezer_dr.simulator.runner import RunOptions
from freezer_dr.simulator.runner import SimCloud
from freezer_dr.simulator.seed import Shape
from freezer_dr.simulator.state import FAILURE_MODES
from freezer_dr.simulator.state import Settings

LOG = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog='freezer-dr-sim',
                                description='The simulated OpenStack cloud.')
    p.add_argument('--state-dir', default=os.environ.get(
        'FREEZER_DR_SIM_STATE_DIR', '.'), help='State directory.')
    sub = p.add_subparsers(dest='command', required=True)

    run = sub.add_parser('run', help='Start the cloud (foreground).')
    run.add_argument('--state-dir', dest='run_state_dir')
    run.add_argument('--hosts', type=int, default=3)
    run.add_argument('--instances', type=int, default=6)
    run.add_argument('--projects', type=int, default=2)
    run.add_argument('--users-per-project', type=int, default=2)
    run.add_argument('--cells', type=int, default=1,
                     help='Cells the hosts are spread over (round-robin).')
    run.add_argument('--service-down-time', type=float, default=3.0)
    run.add_argument('--report-interval', type=float, default=1.0)
    run.add_argument('--boot-delay', type=float, default=1.0)
    run.add_argument('--rebuild-time', type=float, default=1.0)
    run.add_argument('--rpc-timeout', type=float, default=60.0,
                     help='Seconds before an RPC call to a dead '
                          'nova-compute fails (rpc_response_timeout).')
    run.add_argument('--seed', type=int)
    run.add_argument('--smtp-port', type=int, default=0)
    run.add_argument('--smtp-security', default='none',
                     choices=['none', 'starttls', 'ssl'])
    run.add_argument('--smtp-auth', action='store_true',
                     help='Require SMTP AUTH (user freezer-dr, password '
                          'in STATE/smtp-password and freezer-dr.conf).')
    run.add_argument('--no-bmc', action='store_true',
                     help='Do not start the BMC process.')
    run.add_argument('--bmc', default='ipmi', choices=BMC_CHOICES,
                     help='BMC of every host: IPMI, Redfish (HTTPS), or '
                          'mixed (alternating per host).')
    run.add_argument('--bind-host', default='127.0.0.1',
                     help='Address every endpoint (Keystone, Nova, '
                          'control API, SMTP, BMCs) listens on and is '
                          'advertised at, e.g. a network namespace\'s.')
    run.add_argument('--debug', action='store_true')

    status = sub.add_parser('status', help='Hosts, power, services.')
    status.add_argument('-f', '--format', choices=['table', 'json'],
                        default='table')
    fail = sub.add_parser('fail', help='Fail a host.')
    fail.add_argument('host')
    fail.add_argument('--mode', choices=FAILURE_MODES, default='power')
    recover = sub.add_parser('recover', help='Power on / heal a host.')
    recover.add_argument('host')
    power = sub.add_parser('power', help='Read or set ground-truth power.')
    power.add_argument('host')
    power.add_argument('state', nargs='?', choices=['on', 'off'])
    boot = sub.add_parser('boot', help='Create a server on a host.')
    boot.add_argument('name')
    boot.add_argument('--host', required=True)
    boot.add_argument('--project')
    boot.add_argument('--status', default='ACTIVE',
                      choices=['ACTIVE', 'SHUTOFF', 'ERROR'])
    boot.add_argument('--metadata', action='append', default=[],
                      metavar='KEY=VALUE')
    inject = sub.add_parser('inject', help='Inject latency and errors.')
    inject.add_argument('--latency', action='append', default=[],
                        metavar='API=SECONDS')
    inject.add_argument('--error-rate', action='append', default=[],
                        metavar='API=RATE')
    inject.add_argument('--error-status', type=int, choices=[500, 503])
    inject.add_argument('--rebuild-time', type=float)
    inject.add_argument('--evacuate-failure-rate', type=float)
    inject.add_argument('--bmc', metavar='HOST',
                        help='BMC of HOST gets --bmc-mode.')
    inject.add_argument('--bmc-mode', default='none',
                        choices=['none', 'unreachable', 'slow', 'stuck',
                                 'wrong-password'])
    inject.add_argument('--bmc-delay', type=float, default=0.0)
    inject.add_argument('--smtp-mode',
                        choices=['none', 'slow', 'reject', 'refuse'],
                        help='SMTP sink fault (none heals).')
    inject.add_argument('--smtp-delay', type=float, default=0.0,
                        help='Seconds before each reply (slow).')
    inject.add_argument('--down-cell', metavar='CELL',
                        help='Nova can no longer reach CELL.')
    inject.add_argument('--up-cell', metavar='CELL',
                        help='Nova can reach CELL again.')
    return p


def _pairs(items: list[str], what: str) -> dict[str, t.Any]:
    out: dict[str, t.Any] = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep:
            raise SystemExit(f'{what}: expected KEY=VALUE, got {item!r}')
        out[key] = value
    return out


def _setup_logging(state_dir: str, debug: bool) -> None:
    conf = cfg.ConfigOpts()
    logging.register_options(conf)
    conf([], project='freezer-dr-sim')
    conf.set_override('log_file', os.path.join(state_dir, 'sim.log'))
    conf.set_override('debug', debug)
    logging.setup(conf, 'freezer-dr-sim')


def run(args: argparse.Namespace) -> int:
    state_dir = os.path.abspath(args.run_state_dir or args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    _setup_logging(state_dir, args.debug)
    options = RunOptions(
        state_dir=state_dir,
        shape=Shape(args.hosts, args.instances, args.projects,
                    args.users_per_project, cells=args.cells),
        settings=Settings(report_interval=args.report_interval,
                          service_down_time=args.service_down_time,
                          boot_delay=args.boot_delay,
                          rebuild_time=args.rebuild_time,
                          rpc_timeout=args.rpc_timeout),
        seed=args.seed, smtp_port=args.smtp_port,
        smtp_security=args.smtp_security, smtp_auth=args.smtp_auth,
        bmcs=not args.no_bmc, bmc_kind=args.bmc, bind_host=args.bind_host)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    cloud = SimCloud(options)
    try:
        try:
            cloud.start()
        except OSError as exc:
            if exc.errno not in LISTEN_ERRORS:
                raise
            print(f'freezer-dr-sim: cannot listen: {_listen_error(args, exc)}',
                  file=sys.stderr)
            return 2
        print(json.dumps(cloud.endpoints, indent=2), flush=True)
        stop.wait()
    finally:
        cloud.stop()
    return 0


#: an endpoint's failure to listen, which the options can explain
LISTEN_ERRORS = (errno.EADDRNOTAVAIL, errno.EADDRINUSE, errno.EACCES)


def _listen_error(args: argparse.Namespace, exc: OSError) -> str:
    """What an endpoint's failure to listen says about the options."""
    if exc.errno == errno.EADDRNOTAVAIL:
        return f'--bind-host {args.bind_host} is no address of this host'
    return (f'--bind-host {args.bind_host}, --smtp-port {args.smtp_port}: '
            f'{exc.strerror}')


def _control(state_dir: str, method: str, path: str,
             body: dict[str, t.Any] | None = None) -> t.Any:
    try:
        with open(os.path.join(state_dir, 'endpoints.json')) as f:
            url = json.load(f)['control']
    except (OSError, ValueError, KeyError) as exc:
        raise SystemExit(f'no running simulator in {state_dir}: {exc}')
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method=method,
                                 headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b'null')
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors='replace')
        raise SystemExit(f'error {exc.code}: {detail}')
    except OSError as exc:
        raise SystemExit(f'simulator unreachable at {url}: {exc}')


def _print_status(status: dict[str, t.Any]) -> None:
    row = '{:<16} {:<5} {:<10} {:<6} {:<6} {:<9} {:>9}'
    print(row.format('HOST', 'POWER', 'FAILURE', 'STATE', 'FORCED',
                     'STATUS', 'INSTANCES'))
    for h in status['hosts']:
        print(row.format(h['host'], h['power'], h['failure'] or '-',
                         h['service_state'], str(h['forced_down']).lower(),
                         h['status'], h['instances']))
    print('servers: ' + ', '.join(f'{k} {v}' for k, v in
                                  sorted(status['servers'].items())))


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == 'run':
        if args.cells < 1:
            parser.error(f'--cells must be at least 1, not {args.cells}')
        return run(args)
    d = os.path.abspath(args.state_dir)
    if args.command == 'status':
        status = _control(d, 'GET', '/sim/status')
        if args.format == 'json':
            print(json.dumps(status, indent=2))
        else:
            _print_status(status)
    elif args.command == 'fail':
        print(json.dumps(_control(d, 'POST', f'/sim/hosts/{args.host}/fail',
                                  {'mode': args.mode})))
    elif args.command == 'recover':
        print(json.dumps(_control(d, 'POST',
                                  f'/sim/hosts/{args.host}/recover', {})))
    elif args.command == 'power':
        path = f'/sim/hosts/{args.host}/power'
        result = (_control(d, 'POST', path, {'power': args.state})
                  if args.state else _control(d, 'GET', path))
        print(result['power'])
    elif args.command == 'boot':
        body = {'name': args.name, 'host': args.host, 'status': args.status,
                'metadata': _pairs(args.metadata, '--metadata')}
        if args.project:
            body['project'] = args.project
        print(json.dumps(_control(d, 'POST', '/sim/servers', body)))
    elif args.command == 'inject':
        body: dict[str, t.Any] = {
            'latency': _pairs(args.latency, '--latency'),
            'error_rate': _pairs(args.error_rate, '--error-rate')}
        for key in ('error_status', 'rebuild_time', 'evacuate_failure_rate'):
            if getattr(args, key) is not None:
                body[key] = getattr(args, key)
        print(json.dumps(_control(d, 'POST', '/sim/faults', body)))
        for cell, down in ((args.down_cell, True), (args.up_cell, False)):
            if cell:
                print(json.dumps(_control(d, 'POST', f'/sim/cells/{cell}',
                                          {'down': down})))
        if args.bmc:
            print(json.dumps(_control(
                d, 'POST', f'/sim/bmc/{args.bmc}',
                {'mode': args.bmc_mode, 'delay': args.bmc_delay})))
        if args.smtp_mode:
            print(json.dumps(_control(
                d, 'POST', '/sim/smtp',
                {'mode': args.smtp_mode, 'delay': args.smtp_delay})))
    return 0


if __name__ == '__main__':
    sys.exit(main())
