"""Fencing readiness on the simulated cloud: real BMCs, real etcd, a real
SMTP sink; ``freezer-dr-manage fencing status|check`` as a process.

The checks find a wrong password, an unreachable BMC and an inventory
entry that points at another host's BMC, alert once per change, and never
send a power command (the BMCs' own power log says so).
"""
from __future__ import annotations

import json
import threading
import time

import yaml

from freezer_dr.demo.cluster import wait_for
from freezer_dr.engine import loop as engine_loop
from freezer_dr.engine import preflight
from tests import invariants
from tests.functional.loop_support import make_conf
from tests.functional.test_operator_requests import manage


def readiness_mails(cloud) -> list:
    return [m for m in invariants.messages(cloud.maildir)
            if 'fencing_' in m.get('X-Freezer-DR-Key', '')]


def alerts_of(cloud, host: str) -> list[str]:
    """Readiness alert kinds of ``host``, oldest first."""
    mails = sorted(readiness_mails(cloud), key=lambda m: m['Date'].datetime)
    return [m['X-Freezer-DR-Key'].split(':')[0] for m in mails
            if m['X-Freezer-DR-Key'].split(':')[1] == host]


def swap_bmc(cloud, host, other) -> None:
    """The inventory entry of ``host`` points at ``other``'s BMC."""
    with open(cloud.nodes_yaml) as f:
        nodes = yaml.safe_load(f)
    nodes['nodes'][host] = nodes['nodes'][other]
    with open(cloud.nodes_yaml, 'w') as f:
        yaml.safe_dump(nodes, f)


def checked_twice(loop, store, hosts, timeout: float = 40.0) -> None:
    """Run cycles until every host's readiness was checked twice."""
    first: dict[str, float] = {}

    def twice() -> bool:
        loop.run_cycle()
        found = store.values('fencing/')
        for host in hosts:
            if host in found:
                first.setdefault(host, found[host]['checked_at'])
        return all(host in found and found[host]['checked_at'] > first[host]
                   for host in hosts)
    wait_for(twice, timeout, 'two readiness checks of every host',
             interval=0.3)


def run_for(loop, seconds: float) -> None:
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        loop.run_cycle()
        time.sleep(0.3)


def test_readiness_finds_broken_fencing_without_a_power_command(
        sim_cloud_factory, leader, etcd_url, cluster_name):
    cloud = sim_cloud_factory(hosts=5, instances=5, service_down_time=2.0)
    lease, store = leader
    store.set_paused('readiness test', 'tester')     # no recoveries here
    wrong, dead, mistaken, lent = cloud.hosts[:4]
    swap_bmc(cloud, mistaken, lent)
    cloud.set_power(lent, 'off')          # the BMC it points at reads OFF
    conn = cloud.connection()
    while any(s.state == 'up' for s in conn.compute.services(host=lent)):
        time.sleep(0.3)                   # Nova sees the lent host down
    cloud.bmc_fault(wrong, 'wrong-password')
    cloud.bmc_fault(dead, 'unreachable')
    since = time.time()
    conf = make_conf(cloud, etcd_url, cluster_name,
                     fencing={'check_interval': 2.0, 'check_concurrency': 4,
                              'call_timeout': 2.5})
    loop = engine_loop.build(conf, lease, store)
    try:
        check_and_repair(cloud, loop, store, etcd_url, cluster_name, since,
                         wrong, dead, mistaken, lent)
    finally:
        loop.stop()


def check_and_repair(cloud, loop, store, etcd_url, cluster_name, since,
                     wrong, dead, mistaken, lent) -> None:
    checked_twice(loop, store, cloud.hosts)
    found = store.values('fencing/')
    assert set(found) == set(cloud.hosts)
    assert not found[wrong]['ready']
    assert 'ipmi' in found[wrong]['summary']
    assert not found[dead]['ready']
    assert found[dead]['summary'].startswith(f'ipmi: {dead}: IPMI BMC')
    assert not found[mistaken]['ready']
    assert 'inventory mistake' in found[mistaken]['summary']
    assert found[cloud.hosts[4]]['ready']
    log = cloud.bmc_log()
    for host in cloud.hosts:
        assert invariants.off_commands(log, host, since) == []
    assert not [e for e in log if e['t'] >= since
                and e['command'] not in ('status',)
                and e['host'] != lent], 'a power command was sent'
    # one alert per host that turned not ready, however many checks ran
    for host in (wrong, dead, mistaken):
        assert alerts_of(cloud, host) == ['fencing_not_ready'], host
    metrics = loop.metrics.render()
    assert f'\nfreezer_dr_fencing_ready{{host="{wrong}"}} 0.0\n' in metrics
    assert f'\nfreezer_dr_fencing_ready{{host="{cloud.hosts[4]}"}} 1.0\n' \
        in metrics
    # repaired: one "ready again" alert
    cloud.bmc_fault(wrong, 'none')
    deadline = time.monotonic() + 40
    while not store.values('fencing/')[wrong]['ready']:
        assert time.monotonic() < deadline, 'not ready again in 40 s'
        run_for(loop, 1.0)
    run_for(loop, 4.0)
    assert alerts_of(cloud, wrong) == ['fencing_not_ready', 'fencing_ready']
    for host in cloud.hosts:      # never one alert per check: they alternate
        kinds = alerts_of(cloud, host)
        assert all(a != b for a, b in zip(kinds, kinds[1:], strict=False)), \
            (host, kinds)
    # the operator's view
    status = manage(cloud, etcd_url, cluster_name, 'fencing', 'status',
                    '-f', 'json')
    assert status.returncode == 0, status.stderr
    summary = json.loads(status.stdout)['summary']
    assert summary.startswith('fencing: ') and f'{dead}: ipmi' in summary
    overview = manage(cloud, etcd_url, cluster_name, 'status')
    assert overview.returncode == 0, overview.stderr
    # one line of it in the cluster status
    line = [x for x in overview.stdout.splitlines()
            if x.startswith('fencing: ')]
    assert len(line) == 1 and f'{dead}: ipmi' in line[0], overview.stdout
    check = manage(cloud, etcd_url, cluster_name, 'fencing', 'check',
                   dead, wrong)
    assert check.returncode == 1, check.stdout + check.stderr
    assert dead in check.stdout and 'yes' in check.stdout


def readiness_result(host: str, power: str | None) -> dict:
    """A readiness result of ``host``: its one level read ``power``
    (None: the BMC did not answer)."""
    level = {'index': 1, 'driver': 'ipmi', 'power': power,
             'ok': power is not None}
    return {'host': host, 'ready': power is not None,
            'checked_at': time.time(), 'levels': [level],
            'summary': power or 'unreachable'}


def test_an_on_reading_outlives_the_results_stored_after_it(leader):
    """S1: an operator's confirmation written before a readiness check read
    the host ON stays refused after a later check (BMC unreachable) replaced
    that result; only the latest result was looked at before."""
    lease, store = leader
    checker = preflight.FencingReadiness(
        preflight.ReadinessSettings(), store, lease,
        alert=lambda *args: True)

    def check(power: str | None) -> None:
        checker.record(readiness_result('h1', power))

    check('off')
    store.request('fence-confirmed', 'h1', {'recovery_id': 'r'})
    confirmed_at = store.requests('fence-confirmed')['h1']['revision']
    assert not preflight.power_on_since(store, 'h1', confirmed_at)
    check('on')
    check(None)                               # the BMC stops answering
    check(None)
    assert preflight.power_on_since(store, 'h1', confirmed_at)
    store.request('fence-confirmed', 'h1', {'recovery_id': 'r'})
    later = store.requests('fence-confirmed')['h1']['revision']
    assert not preflight.power_on_since(store, 'h1', later)


def test_two_checks_of_a_host_at_once_keep_the_on_reading(leader):
    """S1: a check that read the host ON and a slower one that found its
    BMC unreachable, recorded at the same time: the ON reading must not be
    lost by the second read-then-write (it was, when both read first)."""
    lease, store = leader
    checker = preflight.FencingReadiness(
        preflight.ReadinessSettings(), store, lease,
        alert=lambda *args: True)

    def result(power: str | None) -> dict:
        return readiness_result('h2', power)

    checker.record(result('off'))
    store.request('fence-confirmed', 'h2', {'recovery_id': 'r'})
    confirmed_at = store.requests('fence-confirmed')['h2']['revision']
    both_read = threading.Barrier(2)
    read, put = store.get_with_revision, store.put_fenced

    def read_together(key):
        found = read(key)
        try:
            both_read.wait(timeout=1.0)     # never both, once serialized
        except threading.BrokenBarrierError:
            pass
        return found

    def unreachable_last(key, value):
        if not preflight.read_on(value):
            time.sleep(0.3)
        put(key, value)

    store.get_with_revision = read_together
    store.put_fenced = unreachable_last
    try:
        threads = [threading.Thread(target=checker.record, args=(r,))
                   for r in (result('on'), result(None))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
    finally:
        store.get_with_revision, store.put_fenced = read, put
    assert not store.get('fencing/h2')['ready']       # the later result
    assert preflight.power_on_since(store, 'h2', confirmed_at)
