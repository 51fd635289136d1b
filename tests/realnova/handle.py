"""Test-side handle of the real-Nova box: a CloudHandle over a subprocess.

Starts ``python -m tests.realnova.serve`` in its own process (nova's
fixtures and monkeypatching never touch the caller), waits for its
``endpoints.json`` and drives it over HTTP only: openstacksdk for Nova, the
box's ``/sim/...`` control API for failures and boots. The shape is the
shared CloudHandle of the contract and end-to-end tests (see the brief
``cloud-handle.md``)::

    with RealNovaCloud(state_dir, hosts=4, service_down_time=6) as cloud:
        conn = cloud.connection()
        server_id = cloud.boot('vm1', cloud.hosts[0])
        cloud.fail(cloud.hosts[0], 'crash')
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openstack
from openstack import config as os_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
FAILURE_MODES = ('power', 'crash', 'partition')


def nova_available() -> bool:
    """Whether nova (the ``realnova`` extra) is importable here."""
    return importlib.util.find_spec('nova') is not None


class BoxFailed(RuntimeError):
    """The box did not start, or a control request failed."""


class RealNovaCloud:
    """Real Nova with fake compute hosts, started as a subprocess."""

    name = 'realnova'
    cloud = 'realnova'
    maildir: str | None = None
    smtp: tuple[str, int] | None = None

    def __init__(self, state_dir: str, hosts: int = 4,
                 service_down_time: float = 6, report_interval: float = 1,
                 bmc: bool = True, start_timeout: float = 180):
        self.state_dir = os.path.abspath(state_dir)
        self._n_hosts = hosts
        self.service_down_time = service_down_time
        self.report_interval = report_interval
        self._with_bmc = bmc
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen | None = None
        self._endpoints: dict = {}
        self.start_seconds: float | None = None

    # -- lifecycle -------------------------------------------------------
    def start(self) -> RealNovaCloud:
        """Start the box and wait until it has written endpoints.json."""
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        ready = os.path.join(self.state_dir, 'endpoints.json')
        cmd = [sys.executable, '-m', 'tests.realnova.serve',
               '--state-dir', self.state_dir, '--hosts', str(self._n_hosts),
               '--service-down-time', str(self.service_down_time),
               '--report-interval', str(self.report_interval)]
        if not self._with_bmc:
            cmd.append('--no-bmc')
        env = {k: v for k, v in os.environ.items()
               if not k.startswith('OS_')}
        env['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = '1'
        env['PYTHONPATH'] = os.pathsep.join(
            p for p in (REPO_ROOT, env.get('PYTHONPATH')) if p)
        started = time.monotonic()
        with open(self._path('serve.log'), 'ab') as log:
            self._proc = subprocess.Popen(
                cmd, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, start_new_session=True)
        deadline = started + self._start_timeout
        while not os.path.exists(ready):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise BoxFailed('real-Nova box did not start:\n'
                                + self._log_tail())
            time.sleep(0.1)
        self.start_seconds = round(time.monotonic() - started, 2)
        with open(ready) as f:
            self._endpoints = json.load(f)
        return self

    def close(self) -> None:
        """Stop the box (SIGTERM, then SIGKILL) and its BMC child."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            # The whole session: the box and the BMC process it started.
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def __enter__(self) -> RealNovaCloud:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- CloudHandle attributes -----------------------------------------
    @property
    def clouds_yaml(self) -> str:
        return self._path('clouds.yaml')

    @property
    def nodes_yaml(self) -> str:
        return self._path('nodes.yaml')

    @property
    def hosts(self) -> list[str]:
        return list(self._endpoints['hosts'])

    @property
    def bmc_log_path(self) -> str:
        return self._endpoints['bmc_log']

    @property
    def nova_url(self) -> str:
        return self._endpoints['nova']

    @property
    def control_url(self) -> str:
        return self._endpoints['control']

    @property
    def pid(self) -> int:
        """Process id of the box (its BMC process is its child)."""
        return self._endpoints['pid']

    # -- CloudHandle methods --------------------------------------------
    def connection(self, **config) -> openstack.connection.Connection:
        """An admin openstacksdk connection; ``config`` as in clouds.yaml
        (e.g. ``compute_api_version='2.94'``)."""
        region = os_config.OpenStackConfig(
            config_files=[self.clouds_yaml]).get_one(self.cloud, **config)
        return openstack.connection.Connection(config=region)

    def boot(self, name: str, host: str, project: str | None = None,
             status: str = 'ACTIVE', metadata: dict | None = None) -> str:
        """Boot a server on ``host`` and wait until it is in ``status``."""
        body = {'name': name, 'host': host, 'project': project,
                'status': status, 'metadata': metadata or {}}
        return self._control('POST', '/sim/servers', body)['id']

    def fail(self, host: str, mode: str) -> None:
        """Fail ``host``: 'power' (off), 'crash' or 'partition' (no
        heartbeat, power stays on)."""
        self._control('POST', f'/sim/hosts/{host}/fail', {'mode': mode})

    def recover(self, host: str) -> None:
        """Power on and start a new nova-compute for ``host``."""
        self._control('POST', f'/sim/hosts/{host}/recover', {})

    def power(self, host: str) -> str:
        """Ground-truth power state of ``host``: 'on' or 'off'."""
        return self._control('GET', f'/sim/hosts/{host}/power')['power']

    def bmc(self, host: str) -> dict:
        """IPMI address, port and credentials of ``host``'s BMC."""
        entry = self._endpoints['bmc'].get(host)
        if entry is None:
            raise KeyError(f'no BMC for {host} (box started without BMCs)')
        with open(os.path.join(self.state_dir, 'bmc', host)) as f:
            return dict(entry, password=f.read())

    def bmc_log(self) -> list[dict]:
        """Every power command the BMCs received, oldest first."""
        try:
            with open(self.bmc_log_path) as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    # -- helpers ---------------------------------------------------------
    def _path(self, name: str) -> str:
        return os.path.join(self.state_dir, name)

    def _log_tail(self, lines: int = 30) -> str:
        try:
            with open(self._path('serve.log'), errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except FileNotFoundError:
            return '(no serve.log)'

    def _control(self, method: str, path: str,
                 body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.control_url + path, data=data, method=method,
            headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=180) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors='replace')
            raise BoxFailed(f'{method} {path}: {exc.code} {detail}') from None
