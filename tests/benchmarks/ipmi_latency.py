"""IPMI fencing latency benchmark: prints JSON figures (not a test).

    python -m tests.benchmarks.ipmi_latency [--fences 200] [--hosts 4]
        [--without-wakeup-fix]

Each sample is one verified fence (log in, read the power, send "off",
read it back off, log out) with :class:`IpmiFencer` against the simulated
BMC process over UDP on loopback; the host is powered back on through
the BMC process's control API between fences. ``--without-wakeup-fix``
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

from pyghmi.ipmi.private import session as pyghmi_session

from freezer_dr.fencers import ipmi_client
from freezer_dr.fencers.context import FenceContext
from freezer_dr.fencers.context import FencingSettings
from freezer_dr.fencers.ipmi import IpmiFencer
from tests.bmcproc import BmcProcess

GOAL_P99_MS = 100.0
SETTINGS = FencingSettings(call_timeout=5.0, power_off_timeout=2.0,
                           poll_interval=0.01)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--fences', type=int, default=200)
    parser.add_argument('--hosts', type=int, default=4)
    parser.add_argument('--without-wakeup-fix', action='store_true')
    args = parser.parse_args(argv)
    if args.without_wakeup_fix:       # keep pyghmi's own _io_wait
        ipmi_client._installed = True
    hosts = [f'bench-{i}' for i in range(args.hosts)]
    workdir = tempfile.mkdtemp(prefix='ipmi-latency-')
    bmcs = BmcProcess(workdir, [{'host': h, 'username': 'admin',
                                 'password': f'pw-{h}'} for h in hosts])
    samples: list[float] = []
    try:
        for i in range(args.fences):
            host = hosts[i % len(hosts)]
            bmcs.set_power(host, 'on')
            fencer = IpmiFencer(host, {
                'address': '127.0.0.1', 'port': bmcs.ports[host],
                'username': 'admin', 'password': f'pw-{host}'},
                FenceContext(settings=SETTINGS))
            started = time.perf_counter()
            result = fencer.fence(time.monotonic() + 10)
            samples.append((time.perf_counter() - started) * 1000)
            if not (result.success and bmcs.state()[host]['power'] == 'off'):
                raise SystemExit(f'fence {i} of {host} not verified off')
    finally:
        bmcs.stop()
    figures = {
        'fences': len(samples),
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
