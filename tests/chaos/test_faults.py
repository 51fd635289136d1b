"""Chaos: every fault kind at random points of recoveries.

One deployment (real etcd behind one TCP proxy per replica, three
replicas, the simulated cloud with real BMCs and SMTP) lives through many
runs. In each run a host fails and, when its recovery reaches the
targeted step (read from etcd), a fault from :mod:`tests.chaos.faults` is
injected: replicas killed or stopped, the leader cut from etcd, etcd slow
or restarted, a BMC slow / unreachable / stuck / with a wrong password,
Nova slow or failing or a Nova cell down, SMTP slow or refusing, a
replica's clock skewed, a second host failing, the host coming back.
After every run the invariants are checked from ground truth only
(:mod:`tests.invariants`): S1 from the BMC log against Nova's
migrations, the confirmation window, S3 from the migrations, S4 from the
record and the mailbox, power states restored, one mail per person.

``FREEZER_DR_BMC`` (the hosts' BMCs: ``ipmi``, the default, ``redfish``
or ``mixed``), ``FREEZER_DR_CHAOS_RUNS`` (default 8),
``FREEZER_DR_CHAOS_SEED`` (printed),
``FREEZER_DR_CHAOS_FAULTS`` (comma-separated kinds, default all),
``FREEZER_DR_CHAOS_MIN_HITS`` (fail unless every kind hit every recovery
step it can reach that often; default 0) and ``FREEZER_DR_CHAOS_REPORT`` (the
JSON report's path) steer it. The fault x step matrix is printed at the
end of the session.
"""
from __future__ import annotations

import json
import os
import random
import tempfile
import time

import pytest

from tests import invariants
from tests.chaos import coverage as coverage_mod
from tests.chaos import faults
from tests.chaos.deployment import ChaosDeployment
from tests.chaos.runs import ChaosRun
from tests.faketime import faketime_lib

RUNS = int(os.environ.get('FREEZER_DR_CHAOS_RUNS', '8'))
SEED = int(os.environ.get('FREEZER_DR_CHAOS_SEED', str(int(time.time()))))
MIN_HITS = int(os.environ.get('FREEZER_DR_CHAOS_MIN_HITS', '0'))
BMC = os.environ.get('FREEZER_DR_BMC', 'ipmi')
ONLY = [k for k in os.environ.get('FREEZER_DR_CHAOS_FAULTS', '').split(',')
        if k]
#: a harness that keeps failing (not the system under test) stops the run
MAX_HARNESS_ERRORS = 3


@pytest.fixture(scope='module')
def deployment():
    """The deployment, in a directory of its own that is kept (logs for a
    violation's evidence; pytest's rotating basetemp would drop it)."""
    d = ChaosDeployment(tempfile.mkdtemp(prefix='freezer-dr-chaos-'),
                        bmc=BMC)
    d.start()
    yield d
    d.close()


def kinds(say) -> dict[str, faults.FaultKind]:
    unknown = set(ONLY) - set(faults.KINDS)
    if unknown:
        raise ValueError(f'FREEZER_DR_CHAOS_FAULTS: unknown kinds '
                         f'{sorted(unknown)}; known: {sorted(faults.KINDS)}')
    chosen = {n: k for n, k in faults.KINDS.items() if not ONLY or n in ONLY}
    if faketime_lib() is None:
        if os.environ.get('CI') == 'true':
            raise RuntimeError('libfaketime is not installed: the clock '
                               'skew faults cannot run')
        say.write_line('libfaketime not installed: no clock skew faults')
        chosen = {n: k for n, k in chosen.items()
                  if not n.startswith('clock-')}
    return chosen


def test_faults_at_random_points_of_recoveries_break_no_invariant(
        deployment, request):
    rng = random.Random(SEED)
    report = os.environ.get('FREEZER_DR_CHAOS_REPORT') or os.path.join(
        deployment.cluster.workdir, 'chaos-report.json')
    say = request.config.pluginmanager.get_plugin('terminalreporter')
    matrix = coverage_mod.Coverage(kinds(say))
    coverage_mod.SESSION.update(coverage=matrix, report=report, seed=SEED)
    say.write_line(f'\nchaos seed {SEED}, {RUNS} runs, report {report}, '
                   f'logs in {deployment.cluster.workdir}')
    mailbox = invariants.Mailbox(deployment.cloud.maildir)
    quarantined: set[str] = set()
    violations: list[str] = []
    errors: list[str] = []
    for number in range(1, RUNS + 1):
        kind, target = matrix.next_cell(rng)
        run = ChaosRun(deployment, rng, number, matrix.kinds[kind], target,
                       mailbox, quarantined)
        try:
            out = run.execute()
        except Exception as error:         # noqa: BLE001 - the harness
            errors.append(f'run {number} ({kind} at {target}): '
                          f'{type(error).__name__}: {error}')
            say.write_line(f'run {number}: HARNESS ERROR {errors[-1]}')
            if len(errors) >= MAX_HARNESS_ERRORS:
                break
            continue
        violations += [f'seed {SEED} run {number} ({kind} at {out.step}: '
                       f'{out.detail}) {v}' for v in out.violations]
        matrix.record(kind, target, out.step, vars(out))
        matrix.write(report, SEED, violations)
        say.write_line(
            f'run {number:>3} {kind:<18} aim {target:<10} hit '
            f'{out.step:<10} {out.seconds:>5.1f} s '
            f'{"VIOLATION " if out.violations else ""}{out.detail}; '
            + json.dumps(out.records))
    assert errors == [], '\n'.join(errors)
    assert violations == [], '\n'.join(violations)
    if MIN_HITS:
        assert matrix.missing(MIN_HITS) == [], (
            f'cells hit fewer than {MIN_HITS} times')
