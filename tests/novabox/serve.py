"""Run the real-Nova box until SIGTERM: real Keystone, real Nova (and its
Placement), one IPMI BMC per host.

Usage::

    python -m tests.novabox.serve --state-dir D [--hosts 4]
        [--service-down-time 6] [--report-interval 1] [--cells 1]
        [--no-bmc]

Keystone runs in its own process (``tests.novabox.keystone``, state in
``D/keystone``), seeded through its API (``tests.novabox.identity``);
Nova's auth_token middleware validates every token against it.

Writes into D (all files 0600 where they hold secrets):

- ``clouds.yaml``: cloud ``realnova``, password auth as ``admin`` against
  Keystone (the compute endpoint comes from its catalog);
- ``nodes.yaml``: the fencing inventory, an ``ipmi`` level per host with a
  ``password_file`` under ``D/bmc/``;
- ``freezer-dr.conf``: freezer-dr pointed at this cloud and inventory;
- ``endpoints.json`` (written last: its presence means ready), the keys of
  the simulator's where they apply: ``keystone``, ``nova``, ``control``,
  ``cloud``, ``cells`` (``{cell: [hosts]}``),
  ``clouds_yaml``, ``nodes_yaml``, ``config_file``, ``hosts``,
  ``service_down_time``, ``report_interval``, ``bmc`` (``{host: {address,
  port, username}}``, empty with --no-bmc), ``bmc_control``, ``bmc_pid``,
  ``bmc_log``, ``pid``, ``keystone_pid``, ``started_in`` (seconds);
- ``nova.log`` (nova's own logging), ``bmc.log`` (the BMC process),
  ``keystone/keystone.log``.

The BMCs run in their own process (``freezer_dr.simulator.bmc``); their
power callbacks land on the box's control API, so an IPMI power-off stops
that host's nova-compute service.
"""

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

import yaml

from freezer_dr.simulator.child import stop_process
from tests.novabox.box import NovaBox
from tests.novabox.box import serve_wsgi
from tests.novabox.control import ControlApp
from tests.novabox.identity import ADMIN
from tests.novabox.identity import REGION
from tests.novabox.identity import CloudIdentity

CLOUD_NAME = 'realnova'
BMC_USER = 'admin'
KEYSTONE_TIMEOUT = 240


def write_private(path: str, text: str) -> None:
    """Write ``text`` to a new file readable by its owner only."""
    tmp = path + '.tmp'
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def start_bmcs(state_dir: str, hosts: list[str], control_url: str,
               timeout: float = 60) -> tuple[subprocess.Popen, dict]:
    """Start the BMC process; return it and its ready-file contents."""
    ready = os.path.join(state_dir, 'bmc.ready')
    passwords = {h: secrets.token_urlsafe(12) for h in hosts}
    spec = {
        'power_url': control_url + '/sim/hosts/{host}/power',
        'log': os.path.join(state_dir, 'bmc-log.jsonl'),
        'control_port': 0, 'ready_file': ready,
        'bmcs': [{'host': h, 'address': '127.0.0.1', 'port': 0,
                  'username': BMC_USER, 'password': passwords[h]}
                 for h in hosts]}
    spec_path = os.path.join(state_dir, 'bmc-spec.json')
    write_private(spec_path, json.dumps(spec))
    os.makedirs(os.path.join(state_dir, 'bmc'), mode=0o700, exist_ok=True)
    for host, password in passwords.items():
        write_private(os.path.join(state_dir, 'bmc', host), password)
    with open(os.path.join(state_dir, 'bmc.log'), 'ab') as log:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'freezer_dr.simulator.bmc',
             '--spec', spec_path],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + timeout
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            raise RuntimeError('BMC process did not get ready; see bmc.log')
        time.sleep(0.05)
    with open(ready) as f:
        return proc, json.load(f)


def start_keystone(state_dir: str, password: str,
                   timeout: float = KEYSTONE_TIMEOUT,
                   ) -> tuple[subprocess.Popen, dict]:
    """Start Keystone's process; return it and its ready-file contents.

    The admin password goes in the child's environment, never argv.
    """
    directory = os.path.join(state_dir, 'keystone')
    os.makedirs(directory, mode=0o700, exist_ok=True)
    ready = os.path.join(directory, 'ready.json')
    env = dict(os.environ, OS_BOOTSTRAP_PASSWORD=password)
    with open(os.path.join(directory, 'keystone.out'), 'ab') as log:
        proc = subprocess.Popen(
            [sys.executable, '-m', 'tests.novabox.keystone',
             '--state-dir', directory], env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + timeout
    while not os.path.exists(ready):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_child(proc)
            raise RuntimeError('Keystone did not get ready; see '
                               f'{directory}/keystone.log and keystone.out')
        time.sleep(0.1)
    with open(ready) as f:
        return proc, json.load(f)


def stop_child(proc: subprocess.Popen | None) -> None:
    """SIGTERM a child we started, SIGKILL it after 10 s."""
    stop_process(proc)


def inventory(state_dir: str, ports: dict[str, int]) -> dict:
    """The fencing inventory (nodes.yaml) for the started BMCs."""
    return {'nodes': {host: {'fencing': [{
        'driver': 'ipmi', 'address': '127.0.0.1', 'port': port,
        'username': BMC_USER,
        'password_file': os.path.join(state_dir, 'bmc', host)}]}
        for host, port in ports.items()}}


def clouds(identity: CloudIdentity) -> dict:
    """A clouds.yaml with password auth as the cloud admin."""
    return {'clouds': {CLOUD_NAME: {
        'auth_type': 'password',
        'auth': {'auth_url': identity.url, 'username': ADMIN,
                 'password': identity.admin_password, 'project_name': ADMIN,
                 'user_domain_name': 'Default',
                 'project_domain_name': 'Default'},
        'region_name': REGION, 'identity_api_version': 3,
        'interface': 'public'}}}


def freezer_dr_conf(state_dir: str, service_down_time: float) -> str:
    """A freezer-dr config for this cloud ([coordination] left to the
    user; log notifier only: the box has no SMTP sink)."""
    return '\n'.join([
        '# Written by tests.novabox.serve: freezer-dr against real Nova.',
        '# [coordination] (etcd) is left to you.',
        '[cloud]', f'cloud = {CLOUD_NAME}',
        f'clouds_yaml = {os.path.join(state_dir, "clouds.yaml")}', '',
        '[monitor]', f'confirm_window = {service_down_time:g}', '',
        '[fencing]',
        f'inventory = {os.path.join(state_dir, "nodes.yaml")}', '',
        '[evacuation]', 'microversion = 2.94', '',
        '[notifiers]', 'drivers = log', ''])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--state-dir', required=True)
    parser.add_argument('--hosts', type=int, default=4)
    parser.add_argument('--host-prefix', default='compute-')
    parser.add_argument('--service-down-time', type=float, default=6)
    parser.add_argument('--report-interval', type=float, default=1)
    parser.add_argument('--cells', type=int, default=1,
                        help='cells the hosts are spread over (round-robin)')
    parser.add_argument('--projects', type=int, default=2)
    parser.add_argument('--users-per-project', type=int, default=2)
    parser.add_argument('--no-bmc', action='store_true',
                        help='do not start the IPMI BMC process')
    args = parser.parse_args(argv)
    if args.cells < 1:
        parser.error(f'--cells must be at least 1, not {args.cells}')

    started = time.monotonic()
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, mode=0o700, exist_ok=True)

    def path(name: str) -> str:
        return os.path.join(state_dir, name)

    hosts = [f'{args.host_prefix}{i + 1}' for i in range(args.hosts)]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    admin_password = secrets.token_urlsafe(18)
    keystone_proc, keystone = start_keystone(state_dir, admin_password)
    box = control = bmc_proc = None
    try:
        identity = CloudIdentity(keystone['url'], admin_password)
        identity.seed(projects=args.projects,
                      users_per_project=args.users_per_project)
        box = NovaBox(hosts, identity,
                      service_down_time=args.service_down_time,
                      report_interval=args.report_interval,
                      log_path=os.path.join(state_dir, 'nova.log'),
                      cells=args.cells)
        box.start()
        identity.register_compute(box.url + '/v2.1')
        control_app = ControlApp(box)
        control = serve_wsgi(control_app)
        control_url = f'http://127.0.0.1:{control.server_port}'
        bmc_ready = {'bmcs': {}, 'control_port': None}
        if not args.no_bmc:
            bmc_proc, bmc_ready = start_bmcs(state_dir, hosts, control_url)
        write_private(path('clouds.yaml'), yaml.safe_dump(clouds(identity)))
        write_private(path('nodes.yaml'), yaml.safe_dump(
            inventory(state_dir, bmc_ready['bmcs'])))
        write_private(path('freezer-dr.conf'), freezer_dr_conf(
            state_dir, args.service_down_time))
        bmc_port = bmc_ready['control_port']
        if bmc_port:
            control_app.bmc_control_url = f'http://127.0.0.1:{bmc_port}'
        write_private(path('endpoints.json'), json.dumps({
            'keystone': identity.url, 'nova': box.url + '/v2.1',
            'control': control_url,
            'cloud': CLOUD_NAME, 'clouds_yaml': path('clouds.yaml'),
            'nodes_yaml': path('nodes.yaml'),
            'config_file': path('freezer-dr.conf'),
            'hosts': hosts, 'service_down_time': args.service_down_time,
            'cells': {c: [h for h in hosts if box.hosts[h].cell == c]
                      for c in box.cells},
            'report_interval': args.report_interval,
            'bmc': {h: {'address': '127.0.0.1', 'port': p,
                        'username': BMC_USER}
                    for h, p in bmc_ready['bmcs'].items()},
            'bmc_control': (f'http://127.0.0.1:{bmc_port}'
                            if bmc_port else None),
            'bmc_pid': bmc_proc.pid if bmc_proc else None,
            'bmc_log': path('bmc-log.jsonl'),
            'pid': os.getpid(), 'keystone_pid': keystone_proc.pid,
            'started_in': round(time.monotonic() - started, 2)}, indent=1))
        while not stop.wait(1):
            pass
    finally:
        stop_child(bmc_proc)
        if control is not None:
            control.shutdown()
            control.server_close()
        if box is not None:
            box.stop()
        stop_child(keystone_proc)
    return 0


if __name__ == '__main__':
    sys.exit(main())
