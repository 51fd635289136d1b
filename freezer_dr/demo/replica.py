"""One freezer-dr replica process: start it, signal it, ask it.

The one launcher of replica processes, shared by the demo, the tests and
the benchmarks: ``python -m freezer_dr.cmd.service --config-file F``
with its output in a log file, controlled by PID only. The child imports
the same ``freezer_dr`` as its parent (a source tree or an install).
"""
from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
import typing as t

import requests

from freezer_dr.simulator.child import log_tail
from freezer_dr.simulator.child import stop_process

#: the directory that holds the ``freezer_dr`` package this one came from
PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def service_env(extra: t.Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for a child that imports this ``freezer_dr``."""
    env = dict(os.environ)
    path = env.get('PYTHONPATH')
    env['PYTHONPATH'] = PACKAGE_ROOT + (os.pathsep + path if path else '')
    env['PYTHONUNBUFFERED'] = '1'
    env.update(extra or {})
    return env


@dataclasses.dataclass
class LeaderAnswer:
    """One ``GET /leader``: HTTP code (None: no answer) and body."""
    code: int | None
    body: dict[str, t.Any] | None

    @property
    def leading(self) -> bool:
        return self.code == 200


class ReplicaProcess:
    """One replica process and its files."""

    def __init__(self, member_id: str, config_file: str, api_port: int,
                 log_file: str, *, host: str = '127.0.0.1',
                 wrap: t.Sequence[str] = (),
                 env: t.Mapping[str, str] | None = None) -> None:
        """``host``: where its API answers; ``wrap``: a command prefix
        (e.g. ``ip netns exec NS``); ``env``: extra environment of every
        start (may be changed before a restart)."""
        self.member_id = member_id
        self.config_file = config_file
        self.api_port = api_port
        self.log_file = log_file
        self.host = host
        self.command = [*wrap, sys.executable, '-m',
                        'freezer_dr.cmd.service']
        self.env: dict[str, str] = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self._session = requests.Session()

    def __repr__(self) -> str:
        return f'<replica {self.member_id} pid={self.pid}>'

    # -- process control --------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> ReplicaProcess:
        if self.running:
            return self
        with open(self.log_file, 'ab') as log:
            self.proc = subprocess.Popen(
                [*self.command, '--config-file', self.config_file],
                cwd=os.path.dirname(self.log_file) or None,
                env=service_env(self.env), stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def signal(self, signum: int) -> None:
        if self.running:
            assert self.proc is not None
            os.kill(self.proc.pid, signum)

    def terminate(self) -> None:
        """SIGTERM: graceful handover."""
        self.signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the replica dies without releasing anything."""
        self.signal(signal.SIGKILL)
        self.wait(10)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def wait(self, timeout: float) -> int | None:
        """Exit code, or None if still running after ``timeout``."""
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 10) -> int | None:
        """SIGCONT + SIGTERM, then SIGKILL after ``timeout``; exit code."""
        return stop_process(self.proc, timeout)

    # -- observation ------------------------------------------------------
    def url(self, path: str) -> str:
        return f'http://{self.host}:{self.api_port}{path}'

    def leader(self, timeout: float = 0.5) -> LeaderAnswer:
        """``GET /leader`` (code None when the replica does not answer)."""
        try:
            resp = self._session.get(self.url('/leader'), timeout=timeout)
        except requests.RequestException:
            return LeaderAnswer(None, None)
        try:
            body = resp.json()
        except ValueError:
            body = None
        return LeaderAnswer(resp.status_code, body)

    def is_leader(self) -> bool:
        """Running, and its ``/leader`` answers 200 right now."""
        return self.running and self.leader().leading

    def health(self, timeout: float = 1.0) -> int | None:
        try:
            return self._session.get(self.url('/healthz'),
                                     timeout=timeout).status_code
        except requests.RequestException:
            return None

    def metrics(self, timeout: float = 1.0) -> dict[str, float]:
        """The replica's ``/metrics`` as {sample name: value}."""
        text = self._session.get(self.url('/metrics'),
                                 timeout=timeout).text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith('#'):
                name, _, value = line.rpartition(' ')
                values[name] = float(value)
        return values

    def wait_until_serving(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f'{self.member_id} exited with '
                                   f'{self.proc.returncode}:\n'
                                   f'{self.log_tail()}')
            if self.leader().code is not None:
                return
            time.sleep(0.05)
        raise TimeoutError(f'{self.member_id} does not serve /leader:\n'
                           f'{self.log_tail()}')

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_file, lines)

    def log_text(self) -> str:
        with open(self.log_file, errors='replace') as f:
            return f.read()
