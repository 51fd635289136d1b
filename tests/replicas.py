"""Start, stop and observe real freezer-dr replica processes.

Used by the functional HA tests, the chaos and end-to-end tests and the
failover benchmark::

    with ReplicaSet(workdir, [url, url, url], lease_ttl=3) as replicas:
        leader = replicas.wait_for_leader()
        leader.kill()
        other = replicas.wait_for_leader(exclude=leader)

Every replica is ``python -m freezer_dr.cmd.service --config-file F`` with
its own config file, member id, API port and log file. Processes are
controlled by PID only and always cleaned up by :meth:`ReplicaSet.stop`.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import typing as t
import uuid

import requests

from freezer_dr.demo.config import Sections
from freezer_dr.demo.config import merge
from freezer_dr.demo.config import write_config
from freezer_dr.demo.etcd_server import free_ports

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))



def service_env() -> dict[str, str]:
    """Environment for a child that imports freezer_dr from this tree."""
    env = dict(os.environ)
    path = env.get('PYTHONPATH')
    env['PYTHONPATH'] = REPO_ROOT + (os.pathsep + path if path else '')
    env['PYTHONUNBUFFERED'] = '1'
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

    #: how a replica is started (the config file arguments are appended)
    command: t.ClassVar[list[str]] = [
        sys.executable, '-m', 'freezer_dr.cmd.service']

    def __init__(self, workdir: str, member_id: str,
                 sections: Sections) -> None:
        self.member_id = member_id
        self.workdir = workdir
        self.api_port = int(sections['api']['bind_port'])
        self.config_file = write_config(
            os.path.join(workdir, f'{member_id}.conf'), sections)
        self.log_file = os.path.join(workdir, f'{member_id}.log')
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
        log = open(self.log_file, 'ab')
        try:
            self.proc = subprocess.Popen(
                [*self.command, '--config-file', self.config_file],
                cwd=self.workdir, env=service_env(), stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        finally:
            log.close()
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
        if self.proc is None:
            return None
        if self.running:
            self.resume()
            self.terminate()
            if self.wait(timeout) is None:
                self.signal(signal.SIGKILL)
                self.proc.wait(10)
        return self.proc.returncode

    # -- observation ------------------------------------------------------
    def url(self, path: str) -> str:
        return f'http://127.0.0.1:{self.api_port}{path}'

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
        try:
            with open(self.log_file, errors='replace') as f:
                return ''.join(f.readlines()[-lines:])
        except OSError:
            return ''

    def log_text(self) -> str:
        with open(self.log_file, errors='replace') as f:
            return f.read()


class ReplicaSet:
    """N replicas of one cluster, each with its own etcd URL (or proxy)."""

    def __init__(self, workdir: str, backend_urls: t.Sequence[str],
                 cluster: str | None = None, lease_ttl: float = 3.0,
                 poll_interval: float = 0.5, http_timeout: float = 0.5,
                 extra: Sections | None = None) -> None:
        self.workdir = workdir
        self.cluster = cluster or f'test-{uuid.uuid4().hex[:8]}'
        self.replicas: list[ReplicaProcess] = []
        api_ports = free_ports(len(backend_urls))
        for index, url in enumerate(backend_urls):
            member_id = f'replica-{index + 1}'
            base: Sections = {
                'DEFAULT': {'debug': False},
                'coordination': {
                    'backend_url': url, 'cluster': self.cluster,
                    'member_id': member_id, 'lease_ttl': lease_ttl,
                    'http_timeout': http_timeout,
                    'poll_interval': poll_interval,
                    'keepalive_interval': lease_ttl / 4,
                    'safety_margin': min(0.5, lease_ttl / 10),
                    'membership_timeout': max(2.0, lease_ttl)},
                'api': {'bind_host': '127.0.0.1',
                        'bind_port': api_ports[index]},
                'engine': {'poll_interval': 0.5},
            }
            self.replicas.append(ReplicaProcess(
                workdir, member_id, merge(base, extra)))

    def __enter__(self) -> ReplicaSet:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __getitem__(self, index: int) -> ReplicaProcess:
        return self.replicas[index]

    def __iter__(self) -> t.Iterator[ReplicaProcess]:
        return iter(self.replicas)

    def start(self) -> ReplicaSet:
        try:
            for replica in self.replicas:
                replica.start()
            for replica in self.replicas:
                replica.wait_until_serving()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> dict[str, int | None]:
        """Stop every replica; their exit codes by member id."""
        codes = {}
        for replica in self.replicas:
            if replica.running:
                replica.resume()
                replica.terminate()
        for replica in self.replicas:
            codes[replica.member_id] = replica.stop()
        return codes

    def answers(self, timeout: float = 0.3) -> dict[str, LeaderAnswer]:
        """Every running replica's ``/leader``, asked concurrently."""
        running = [r for r in self.replicas if r.running]
        with concurrent.futures.ThreadPoolExecutor(
                max_workers=max(1, len(running))) as pool:
            futures = {r.member_id: pool.submit(r.leader, timeout)
                       for r in running}
            return {k: f.result() for k, f in futures.items()}

    def leaders(self) -> list[ReplicaProcess]:
        answers = self.answers()
        return [r for r in self.replicas
                if r.member_id in answers and answers[r.member_id].leading]

    def by_id(self, member_id: str) -> ReplicaProcess:
        for replica in self.replicas:
            if replica.member_id == member_id:
                return replica
        raise KeyError(member_id)

    def wait_for_leader(self, timeout: float = 30,
                        exclude: t.Iterable[ReplicaProcess] = (),
                        interval: float = 0.02) -> ReplicaProcess:
        """The first replica (not in ``exclude``) answering 200."""
        excluded = {r.member_id for r in exclude}
        candidates = [r for r in self.replicas
                      if r.member_id not in excluded]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for replica in candidates:
                if replica.running and replica.leader(0.3).leading:
                    return replica
            time.sleep(interval)
        raise TimeoutError(
            f'no leader among {[r.member_id for r in candidates]} within '
            f'{timeout} s:\n' + '\n'.join(
                f'--- {r.member_id}\n{r.log_tail()}' for r in candidates))


class LeadershipMonitor:
    """Polls every replica's ``/leader`` and measures overlap.

    Each round asks all replicas concurrently; a round where two or more
    answered 200 counts ``interval`` seconds (or the real gap to the next
    round) of overlap.
    """

    def __init__(self, replicas: ReplicaSet, interval: float = 0.05) -> None:
        self.replicas = replicas
        self.interval = interval
        self.rounds: list[tuple[float, dict[str, int | None]]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> LeadershipMonitor:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> LeadershipMonitor:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            answers = self.replicas.answers(timeout=0.25)
            self.rounds.append(
                (started, {k: a.code for k, a in answers.items()}))
            self._stop.wait(max(0.0, self.interval -
                                (time.monotonic() - started)))

    def leaders_at(self, index: int) -> list[str]:
        return sorted(k for k, code in self.rounds[index][1].items()
                      if code == 200)

    def overlap(self) -> float:
        """Seconds during which two or more replicas answered 200."""
        total = 0.0
        for i, (when, _codes) in enumerate(self.rounds):
            if len(self.leaders_at(i)) > 1:
                nxt = (self.rounds[i + 1][0] if i + 1 < len(self.rounds)
                       else when + self.interval)
                total += nxt - when
        return total

    def leaderless(self) -> float:
        """Seconds during which no replica answered 200."""
        total = 0.0
        for i, (when, _codes) in enumerate(self.rounds[:-1]):
            if not self.leaders_at(i):
                total += self.rounds[i + 1][0] - when
        return total

    def succession(self) -> list[str]:
        """The leaders seen, in order, without repeats."""
        seen: list[str] = []
        for i in range(len(self.rounds)):
            for member_id in self.leaders_at(i):
                if not seen or seen[-1] != member_id:
                    seen.append(member_id)
        return seen

    def overlapping_rounds(self) -> list[tuple[float, list[str]]]:
        return [(when, self.leaders_at(i))
                for i, (when, _c) in enumerate(self.rounds)
                if len(self.leaders_at(i)) > 1]

    def first_leading(self, member_id: str, after: float = 0.0
                      ) -> float | None:
        """Monotonic time of the first round ``member_id`` answered 200."""
        for when, codes in self.rounds:
            if when >= after and codes.get(member_id) == 200:
                return when
        return None

    def last_leading(self, member_id: str) -> float | None:
        last = None
        for when, codes in self.rounds:
            if codes.get(member_id) == 200:
                last = when
        return last

    def summary(self) -> str:
        return json.dumps({'rounds': len(self.rounds),
                           'overlap': round(self.overlap(), 3),
                           'overlapping': self.overlapping_rounds()[:5]})
