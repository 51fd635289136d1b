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
import json
import os
import threading
import time
import typing as t
import uuid

from freezer_dr.demo import replica as launcher
from freezer_dr.demo.config import Sections
from freezer_dr.demo.config import merge
from freezer_dr.demo.config import write_config
from freezer_dr.demo.etcd_server import free_ports


class ReplicaProcess(launcher.ReplicaProcess):
    """A replica whose config file is written from ``sections`` (with
    its API port) into ``workdir``, as ``<member_id>.conf``."""

    def __init__(self, workdir: str, member_id: str,
                 sections: Sections, **options: t.Any) -> None:
        self.workdir = workdir
        super().__init__(
            member_id, write_config(os.path.join(
                workdir, f'{member_id}.conf'), sections),
            int(sections['api']['bind_port']),
            os.path.join(workdir, f'{member_id}.log'), **options)


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

    def answers(self, timeout: float = 0.3
                ) -> dict[str, launcher.LeaderAnswer]:
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
