"""IPMI fencing latency benchmark: prints JSON figures (not a test).

    python -m tests.benchmarks.ipmi_latency [--fences 200] [--hosts 4]
        [--bmc-only] [--without-wakeup-fix]

Each sample is one verified fence (log in, read the power, send "off",
read it back off, log out) with :class:`IpmiFencer` against the
simulated cloud's BMCs over UDP on loopback (``freezer-dr-sim run``: the
BMCs read and switch the hosts' power through the simulator); the host
is powered back on through the simulator between fences. ``--bmc-only``
runs the BMC process alone, power kept in memory. ``--without-wakeup-fix``
runs with pyghmi's own ``_io_wait`` (the lost wake-up left in) to show
what the fix is worth. Goal: p99 <= 100 ms.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import typing as t

from pyghmi.ipmi.private import session as pyghmi_session

from freezer_dr.fencers import ipmi_client
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.ipmi import IpmiFencer
from freezer_dr.simulator.handle import SimCloudHandle
from tests.bmcproc import BmcProcess

GOAL_P99_MS = 100.0
SETTINGS = FencingSettings(call_timeout=5.0, power_off_timeout=2.0,
                           poll_interval=0.01)


class _Cloud:
    """The simulated cloud's IPMI BMCs; power through the simulator."""

    def __init__(self, workdir: str, hosts: int) -> None:
        self.cloud = SimCloudHandle(workdir, hosts=hosts, instances=0,
                                    boot_delay=0.2).start()
        self.hosts = self.cloud.hosts

    def params(self, host: str) -> dict[str, t.Any]:
        bmc = self.cloud.bmc(host)
        return {k: bmc[k] for k in ('address', 'port', 'username',
                                    'password')}

    def power_on(self, host: str) -> None:
        self.cloud.set_power(host, 'on')

    def power(self, host: str) -> str:
        return self.cloud.power(host)

    def close(self) -> None:
        self.cloud.close()


class _BmcOnly:
    """The BMC process alone, power kept in memory."""

    def __init__(self, workdir: str, hosts: int) -> None:
        self.hosts = [f'bench-{i}' for i in range(hosts)]
        self.bmcs = BmcProcess(workdir, [
            {'host': h, 'username': 'admin', 'password': f'pw-{h}'}
            for h in self.hosts])

    def params(self, host: str) -> dict[str, t.Any]:
        return {'address': '127.0.0.1', 'port': self.bmcs.ports[host],
                'username': 'admin', 'password': f'pw-{host}'}

    def power_on(self, host: str) -> None:
        self.bmcs.set_power(host, 'on')

    def power(self, host: str) -> str:
        return self.bmcs.state()[host]['power']

    def close(self) -> None:
        self.bmcs.stop()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--fences', type=int, default=200)
    parser.add_argument('--hosts', type=int, default=4)
    parser.add_argument('--bmc-only', action='store_true')
    parser.add_argument('--without-wakeup-fix', action='store_true')
    args = parser.parse_args(argv)
    if args.without_wakeup_fix:       # keep pyghmi's own _io_wait
        ipmi_client._installed = True
    workdir = tempfile.mkdtemp(prefix='ipmi-latency-')
    if args.bmc_only:
        target: t.Any = _BmcOnly(workdir, args.hosts)
    else:
        target = _Cloud(workdir, args.hosts)
    samples: list[float] = []
    try:
        for i in range(args.fences):
            host = target.hosts[i % len(target.hosts)]
            target.power_on(host)
            fencer = IpmiFencer(host, target.params(host),
                                FenceContext(settings=SETTINGS))
            started = time.perf_counter()
            result = fencer.fence(time.monotonic() + 10)
            samples.append((time.perf_counter() - started) * 1000)
            if not (result.success and target.power(host) == 'off'):
                raise SystemExit(f'fence {i} of {host} not verified off')
    finally:
        target.close()
    figures = {
        'fences': len(samples),
        'bmcs': 'bmc process only' if args.bmc_only else 'simulated cloud',
        'wakeup_fix': pyghmi_session._io_wait is ipmi_client._prompt_io_wait,
        'p50_ms': round(statistics.median(samples), 1),
        'p99_ms': round(percentile(samples, 0.99), 1),
        'max_ms': round(max(samples), 1),
        'over_100ms': sum(1 for s in samples if s > 100),
        'goal_p99_ms': GOAL_P99_MS,
    }
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == '__main__':
    sys.exit(main())
