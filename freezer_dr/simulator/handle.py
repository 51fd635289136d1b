"""A CloudHandle for the simulator: ``freezer-dr-sim run`` as a child.

Used by the ``sim_cloud`` fixture, the benchmarks and the demo. The
simulator runs as a subprocess with a private state directory; the handle
talks to it through its control API and the files it writes, and stops
it by pid (SIGTERM, then SIGKILL) in :meth:`SimCloudHandle.close`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.parse
import urllib.request

import openstack
import yaml
from openstack import config as os_config

from freezer_dr.simulator import child

START_TIMEOUT = 120.0


class SimError(RuntimeError):
    """The simulator did not start, or refused a control request."""


class SimCloudHandle:
    """The simulated cloud, offered to tests as a CloudHandle."""

    name = 'sim'
    cloud = 'sim'

    def __init__(self, state_dir: str, hosts: int = 3, instances: int = 6,
                 projects: int = 2, users_per_project: int = 2,
                 service_down_time: float = 3.0,
                 report_interval: float = 1.0, rebuild_time: float = 1.0,
                 boot_delay: float = 1.0, rpc_timeout: float = 60.0,
                 seed: int | None = None,
                 bmcs: bool = True, bmc: str = 'ipmi',
                 extra_args: t.Sequence[str] = (),
                 bind_host: str = '127.0.0.1',
                 wrap: t.Sequence[str] = ()) -> None:
        """``bmc``: ``ipmi``, ``redfish`` or ``mixed`` (alternating per
        host): the kind of every host's BMC, and of its nodes.yaml level.
        ``bind_host``: the address of every endpoint; ``wrap``: a command
        prefix to run the simulator with (e.g. ``ip netns exec NAME``).
        """
        self.state_dir = os.path.abspath(state_dir)
        self.bmc_kind = bmc
        self.service_down_time = service_down_time
        self._args = [
            *wrap, sys.executable, '-m', 'freezer_dr.cmd.sim', 'run',
            '--state-dir', self.state_dir, '--hosts', str(hosts),
            '--instances', str(instances), '--projects', str(projects),
            '--users-per-project', str(users_per_project),
            '--service-down-time', str(service_down_time),
            '--report-interval', str(report_interval),
            '--rebuild-time', str(rebuild_time),
            '--boot-delay', str(boot_delay),
            '--rpc-timeout', str(rpc_timeout), '--bmc', bmc,
            '--bind-host', bind_host, *extra_args]
        if seed is not None:
            self._args += ['--seed', str(seed)]
        if not bmcs:
            self._args.append('--no-bmc')
        self._proc: subprocess.Popen[bytes] | None = None
        self.endpoints: dict[str, t.Any] = {}

    # -- life ----------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> SimCloudHandle:
        os.makedirs(self.state_dir, exist_ok=True)
        ready = os.path.join(self.state_dir, 'endpoints.json')
        try:
            self._proc, self.endpoints = child.spawn_and_wait(
                self._args, ready, os.path.join(self.state_dir, 'sim.out'),
                timeout, 'freezer-dr-sim')
        except child.ChildError as error:
            self.close()
            raise SimError(str(error)) from None
        return self

    def close(self) -> None:
        """Stop the simulator (and, through it, its BMC process)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        child.stop_process(proc, timeout=15)
        bmc_pid = self.endpoints.get('bmc_pid')
        if bmc_pid:       # left over only if the simulator died hard
            _kill_if_ours(int(bmc_pid),
                          os.path.join(self.state_dir, 'bmc-spec.json'))

    def __enter__(self) -> SimCloudHandle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    # -- CloudHandle attributes ----------------------------------------------
    @property
    def clouds_yaml(self) -> str:
        return self.endpoints['clouds_yaml']

    @property
    def hosts(self) -> list[str]:
        return list(self.endpoints['hosts'])

    @property
    def nodes_yaml(self) -> str:
        return self.endpoints['nodes_yaml']

    @property
    def config_file(self) -> str:
        return self.endpoints['config_file']

    @property
    def bmc_log_path(self) -> str:
        return self.endpoints['bmc_log']

    @property
    def maildir(self) -> str:
        return self.endpoints['maildir']

    @property
    def smtp(self) -> tuple[str, int]:
        return self.endpoints['smtp_host'], int(self.endpoints['smtp_port'])

    # -- CloudHandle methods -------------------------------------------------
    def connection(self, **config: t.Any) -> openstack.connection.Connection:
        """An admin connection via clouds.yaml (``config`` overrides it,
        e.g. ``compute_api_version='2.94'``)."""
        region = os_config.OpenStackConfig(
            config_files=[self.clouds_yaml]).get_one(self.cloud, **config)
        return openstack.connection.Connection(config=region)

    def control(self, method: str, path: str,
                body: dict[str, t.Any] | None = None) -> t.Any:
        """Call the control API; raise SimError with its message."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.endpoints['control'] + path, data=data, method=method,
            headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b'null')
        except urllib.error.HTTPError as exc:
            raise SimError(f'{method} {path}: {exc.code} '
                           f'{exc.read().decode(errors="replace")}')

    def boot(self, name: str, host: str, project: str | None = None,
             status: str = 'ACTIVE', metadata: dict[str, str] | None = None,
             tags: list[str] | None = None) -> str:
        body: dict[str, t.Any] = {'name': name, 'host': host,
                                  'status': status,
                                  'metadata': metadata or {},
                                  'tags': tags or []}
        if project is not None:
            body['project'] = project
        return self.control('POST', '/sim/servers', body)['server']['id']

    def server(self, server_id: str) -> dict[str, t.Any]:
        """Ground truth of one server (host, status, task state)."""
        return self.control('GET', f'/sim/servers/{server_id}')['server']

    def fail(self, host: str, mode: str) -> None:
        self.control('POST', f'/sim/hosts/{host}/fail', {'mode': mode})

    def recover(self, host: str) -> None:
        self.control('POST', f'/sim/hosts/{host}/recover', {})

    def power(self, host: str) -> str:
        return self.control('GET', f'/sim/hosts/{host}/power')['power']

    def set_power(self, host: str, power: str) -> None:
        self.control('POST', f'/sim/hosts/{host}/power', {'power': power})

    def status(self) -> dict[str, t.Any]:
        return self.control('GET', '/sim/status')

    def inject(self, **faults: t.Any) -> dict[str, t.Any]:
        """Set faults: latency / error_rate (``{'nova': x}``),
        error_status, rebuild_time, evacuate_failure_rate."""
        return self.control('POST', '/sim/faults', faults)

    def bmc_fault(self, host: str, mode: str, delay: float = 0.0) -> None:
        """Make a BMC ``unreachable``, ``slow``, ``stuck``... or ``none``."""
        self.control('POST', f'/sim/bmc/{host}',
                     {'mode': mode, 'delay': delay})

    def bmc(self, host: str) -> dict[str, t.Any]:
        """``host``'s BMC: ``kind`` (ipmi / redfish), ``address`` (an IP
        for IPMI, the base URL for Redfish), ``port``, ``username``,
        ``password`` and, for Redfish, ``ca_file``."""
        with open(self.nodes_yaml, encoding='utf-8') as f:
            level = yaml.safe_load(f)['nodes'][host]['fencing'][0]
        with open(level['password_file'], encoding='utf-8') as f:
            password = f.read().strip()
        port = (level.get('port')
                or urllib.parse.urlsplit(str(level['address'])).port)
        return {'kind': level['driver'], 'address': level['address'],
                'port': int(port),
                'username': level['username'], 'password': password,
                'ca_file': level.get('ca_file')}

    def bmc_kinds(self) -> dict[str, str]:
        """Each host's BMC kind (``ipmi`` or ``redfish``)."""
        return dict(self.endpoints.get('bmc_kinds') or {})

    def bmc_log(self) -> list[dict[str, t.Any]]:
        try:
            with open(self.bmc_log_path, encoding='utf-8') as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []


def _kill_if_ours(pid: int, spec: str) -> None:
    """SIGTERM the BMC process ``pid`` if it still runs with ``spec``
    (so a recycled pid is never hit)."""
    try:
        with open(f'/proc/{pid}/cmdline', 'rb') as f:
            if spec.encode() not in f.read():
                return
        os.kill(pid, signal.SIGTERM)
    except (FileNotFoundError, ProcessLookupError):
        return
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
