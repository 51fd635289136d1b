"""Failover benchmark: prints JSON figures (not a test).

    python -m tests.benchmarks.failover [--runs 10] [--ttl 10] [--idle 60]

- ``kill9``: seconds from ``kill -9`` of the leader until another
  replica's ``/leader`` answers 200; the same minus what the dead leader's
  lease still had to live at the kill (``overhead``: freezer-dr's cost over
  the physical limit); and from the deletion of the leader key (seen by a
  watch) to the new leader (``after_key_deleted``: pure reaction time).
- ``sigterm``: seconds from SIGTERM of the leader until another leads.
- ``overlap``: total seconds two replicas answered 200 together across a
  partition, a SIGSTOP and an etcd restart.
- ``idle``: CPU %, RSS MB and etcd requests/s of a leader and a standby.

Everything runs on loopback: one real etcd, three real replica processes
(each through its own TCP proxy), no cloud configured.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
import typing as t

import requests

from freezer_dr.demo.etcd_server import EtcdServer
from freezer_dr.ha import etcd as ha_etcd
from freezer_dr.ha import leader_watch
from freezer_dr.ha import lease as ha_lease
from tests import replicas as rp
from tests import tcpproxy

GOALS = {'kill9_overhead_median': 0.5, 'kill9_overhead_max': 1.0,
         'sigterm_median': 0.5, 'overlap_total': 0.0}


def summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {'min': None, 'median': None, 'max': None, 'n': 0}
    return {'min': round(min(values), 3),
            'median': round(statistics.median(values), 3),
            'max': round(max(values), 3), 'n': len(values)}


def log(message: str) -> None:
    print(f'[{time.strftime("%H:%M:%S")}] {message}', file=sys.stderr,
          flush=True)


class Bench:
    """One etcd, three proxied replicas, and the measurements."""

    def __init__(self, workdir: str, ttl: float) -> None:
        self.workdir = workdir
        self.ttl = ttl
        etcd_dir = os.path.join(workdir, 'etcd')
        os.makedirs(etcd_dir)
        self.etcd = EtcdServer(etcd_dir).start()
        self.proxies = [tcpproxy.TCPProxy('127.0.0.1',
                                          self.etcd.client_port).start()
                        for _ in range(3)]
        os.makedirs(os.path.join(workdir, 'replicas'))
        self.replicas = rp.ReplicaSet(
            os.path.join(workdir, 'replicas'), [p.url for p in self.proxies],
            lease_ttl=ttl, poll_interval=1.0, http_timeout=1.5,
            extra={'engine': {'poll_interval': 2.0},
                   'coordination': {'keepalive_interval': None,
                                    'safety_margin': 0.5}})
        self.client = ha_etcd.make_client(self.etcd.url, 2.0)
        self.reader = ha_lease.LeaderLease(
            self.client, self.replicas.cluster, 'bench-reader', ttl, ttl / 3,
            0.5)

    def close(self) -> None:
        self.replicas.stop()
        for proxy in self.proxies:
            proxy.stop()
        self.etcd.close()

    def proxy_of(self, replica: rp.ReplicaProcess) -> tcpproxy.TCPProxy:
        return self.proxies[self.replicas.replicas.index(replica)]

    def ensure_all_running(self) -> None:
        for replica in self.replicas:
            if not replica.running:
                replica.start()
        for replica in self.replicas:
            replica.wait_until_serving()

    def steady_leader(self) -> rp.ReplicaProcess:
        """A leader with all three replicas up and its key in etcd."""
        self.ensure_all_running()
        leader = self.replicas.wait_for_leader(timeout=6 * self.ttl)
        # kill at a random phase of the keepalive cycle
        time.sleep(0.5 + random.uniform(0, self.ttl / 3))
        return leader

    def wait_new_leader(self, old: rp.ReplicaProcess,
                        timeout: float) -> tuple[rp.ReplicaProcess, float]:
        others = [r for r in self.replicas if r is not old]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for replica in others:
                if replica.leader(0.2).leading:
                    return replica, time.monotonic()
            time.sleep(0.005)
        raise TimeoutError('no new leader')

    # -- kill -9 -------------------------------------------------------
    def kill9_run(self) -> dict[str, t.Any]:
        leader = self.steady_leader()
        deleted: list[float] = []
        watch = leader_watch.LeaderKeyWatch(
            self.client.get_url('/watch'), self.reader.leader_key,
            lambda: deleted.append(time.monotonic()), connect_timeout=2.0,
            idle=60.0).start()
        try:
            time.sleep(0.2)
            etcd_ttl = self.reader.read_leader()['ttl_remaining']
            asked_at = time.monotonic()
            answer = leader.leader()
            killed_at = time.monotonic()
            leader.signal(9)
            # conservative: as if the answer was read when we asked
            local_remaining = (answer.body['lease_remaining']
                               - (killed_at - asked_at))
            successor, led_at = self.wait_new_leader(leader, 3 * self.ttl)
        finally:
            watch.stop()
        leader.wait(10)
        failover = led_at - killed_at
        return {'failover': failover,
                'lease_remaining_at_kill': local_remaining,
                'etcd_ttl_at_kill': etcd_ttl,
                'overhead': failover - local_remaining,
                'after_key_deleted': (led_at - deleted[0]) if deleted
                else None,
                'old': leader.member_id, 'new': successor.member_id}

    # -- SIGTERM -------------------------------------------------------
    def sigterm_run(self) -> float:
        leader = self.steady_leader()
        stopped_at = time.monotonic()
        leader.terminate()
        _successor, led_at = self.wait_new_leader(leader, 3 * self.ttl)
        code = leader.wait(20)
        if code != 0:
            raise RuntimeError(f'{leader.member_id} exited {code}')
        return led_at - stopped_at

    # -- overlap -------------------------------------------------------
    def overlap_partition(self) -> dict[str, t.Any]:
        leader = self.steady_leader()
        proxy = self.proxy_of(leader)
        with rp.LeadershipMonitor(self.replicas) as monitor:
            time.sleep(0.3)
            proxy.blackhole()
            self.wait_new_leader(leader, 3 * self.ttl)
            time.sleep(1.0)
            proxy.forward()
            time.sleep(2.0)
        return scenario(monitor)

    def overlap_sigstop(self) -> dict[str, t.Any]:
        leader = self.steady_leader()
        with rp.LeadershipMonitor(self.replicas) as monitor:
            time.sleep(0.3)
            leader.pause()
            self.wait_new_leader(leader, 3 * self.ttl)
            time.sleep(0.5)
            leader.resume()
            time.sleep(3.0)
        return scenario(monitor)

    def overlap_etcd_restart(self) -> dict[str, t.Any]:
        self.steady_leader()
        with rp.LeadershipMonitor(self.replicas) as monitor:
            time.sleep(0.3)
            self.etcd.restart()
            deadline = time.monotonic() + 10 * self.ttl
            time.sleep(1.0)
            while not self.replicas.leaders():
                if time.monotonic() > deadline:
                    raise TimeoutError('no leader after etcd restart')
                time.sleep(0.1)
            time.sleep(1.0)
        return scenario(monitor)

    # -- idle cost -----------------------------------------------------
    def etcd_requests(self) -> float:
        text = requests.get(self.etcd.client_url + '/metrics', timeout=5).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith('grpc_server_handled_total{'):
                total += float(line.rsplit(' ', 1)[1])
        return total

    def idle(self, seconds: float) -> dict[str, t.Any]:
        """Leader alone, then leader + one standby: per-role cost."""
        leader = self.steady_leader()
        standbys = [r for r in self.replicas if r is not leader]
        for replica in standbys:
            replica.stop()
        time.sleep(2.0)
        alone = self.measure([leader], seconds)
        standbys[0].start().wait_until_serving()
        time.sleep(2.0)
        pair = self.measure([leader, standbys[0]], seconds)
        return {
            'seconds': seconds,
            'leader': {**pair['processes'][leader.member_id],
                       'etcd_requests_per_s': alone['etcd_requests_per_s']},
            'standby': {**pair['processes'][standbys[0].member_id],
                        'etcd_requests_per_s': round(
                            pair['etcd_requests_per_s']
                            - alone['etcd_requests_per_s'], 2)},
        }

    def measure(self, processes: list[rp.ReplicaProcess],
                seconds: float) -> dict[str, t.Any]:
        ticks = os.sysconf('SC_CLK_TCK')
        cpu0 = {r.member_id: cpu_ticks(r.pid) for r in processes}
        req0, t0 = self.etcd_requests(), time.monotonic()
        time.sleep(seconds)
        req1, t1 = self.etcd_requests(), time.monotonic()
        elapsed = t1 - t0
        result = {}
        for replica in processes:
            used = (cpu_ticks(replica.pid) - cpu0[replica.member_id]) / ticks
            result[replica.member_id] = {
                'cpu_percent': round(100 * used / elapsed, 2),
                'rss_mb': round(rss_mb(replica.pid), 1)}
        # the two /metrics scrapes are requests of ours, not gRPC calls
        return {'processes': result,
                'etcd_requests_per_s': round((req1 - req0) / elapsed, 2)}


def scenario(monitor: rp.LeadershipMonitor) -> dict[str, t.Any]:
    """Overlap, time without a leader and who led, seen from outside."""
    return {'overlap': round(monitor.overlap(), 3),
            'leaderless': round(monitor.leaderless(), 3),
            'succession': monitor.succession(),
            'rounds': len(monitor.rounds)}


def cpu_ticks(pid: int) -> int:
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


def rss_mb(pid: int) -> float:
    with open(f'/proc/{pid}/status') as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1]) / 1024
    return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--ttl', type=float, default=10.0)
    parser.add_argument('--idle', type=float, default=60.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix='fdr-bench-') as workdir, \
            contextlib.closing(Bench(workdir, args.ttl)) as bench:
        bench.replicas.start()
        kills = []
        for i in range(args.runs):
            kills.append(bench.kill9_run())
            log(f'kill -9 run {i + 1}: {kills[-1]}')
        terms = []
        for i in range(args.runs):
            terms.append(bench.sigterm_run())
            log(f'sigterm run {i + 1}: {terms[-1]:.3f} s')
        overlaps = {'partition': bench.overlap_partition(),
                    'sigstop': bench.overlap_sigstop(),
                    'etcd_restart': bench.overlap_etcd_restart()}
        log(f'overlaps: {overlaps}')
        idle = bench.idle(args.idle)
    deleted = [k['after_key_deleted'] for k in kills
               if k['after_key_deleted'] is not None]
    report = {
        'lease_ttl': args.ttl, 'runs': args.runs,
        'kill9': {
            'failover_s': summary([k['failover'] for k in kills]),
            'overhead_s': summary([k['overhead'] for k in kills]),
            'after_key_deleted_s': summary(deleted),
            'lease_remaining_at_kill_s': summary(
                [k['lease_remaining_at_kill'] for k in kills]),
            'etcd_ttl_at_kill_s': summary(
                [float(k['etcd_ttl_at_kill']) for k in kills]),
        },
        'sigterm': {'handover_s': summary(terms)},
        'overlap': {**overlaps, 'total_s': round(
            sum(v['overlap'] for v in overlaps.values()), 3)},
        'idle': idle,
        'goals': GOALS,
    }
    overhead = report['kill9']['overhead_s']
    report['goals_met'] = {
        'kill9_overhead_median': overhead['median'] is not None
        and overhead['median'] <= GOALS['kill9_overhead_median'],
        'kill9_overhead_max': overhead['max'] is not None
        and overhead['max'] <= GOALS['kill9_overhead_max'],
        'sigterm_median': report['sigterm']['handover_s']['median']
        is not None and report['sigterm']['handover_s']['median']
        <= GOALS['sigterm_median'],
        'overlap_total': report['overlap']['total_s'] == 0,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == '__main__':
    threading.current_thread().name = 'bench'
    sys.exit(main())
