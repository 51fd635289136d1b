"""The leader loop when its inputs go wrong: issue 7's defects 4 and 5.

Real etcd and the simulated cloud; the monitor is the real nova monitor,
wrapped where a test needs data no cloud sends (a bug's exception, an
empty list). Each test asserts on the cycle's sentence and on the world
(power, mailbox), never on the loop's opinion of itself alone.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

from freezer_dr.demo.cluster import wait_for
from freezer_dr.engine import drivers as engine_drivers
from freezer_dr.engine import loop as engine_loop
from freezer_dr.engine.settings import settings_from_conf
from freezer_dr.model import HostObservation
from tests import invariants
from tests.functional.loop_support import cycles_until
from tests.functional.loop_support import make_conf

ADMIN = 'cloud-admin@example.org'


class Wrapped:
    """The real monitor, its answer changed by ``change(observations)``."""

    def __init__(self, monitor, change):
        self.monitor, self.change = monitor, change

    def hosts(self):
        return self.change(self.monitor.hosts())


def loop_with(conf, lease, store, change) -> engine_loop.LeaderLoop:
    def load():
        real = engine_drivers.load(conf, lambda host: None)
        return dataclasses.replace(real,
                                   monitor=Wrapped(real.monitor, change))
    return engine_loop.LeaderLoop(lease, store, settings_from_conf(conf),
                                  load)


def admin_mails(cloud, kind: str) -> list:
    return [m for m in invariants.messages(cloud.maildir)
            if kind in m.get('X-Freezer-DR-Key', '')]


def test_a_cycle_that_raises_fails_closed_and_the_loop_goes_on(
        cloud, leader, etcd_url, cluster_name):
    """Defect 4: a bug or unexpected data in a cycle never ends the
    process; it is counted, alerted once, and no fencing happens."""
    lease, store = leader
    broken = {'on': True}

    def change(observations):
        if broken['on']:
            raise KeyError('state')     # what a down cell did at 2.69
        return observations

    conf = make_conf(cloud, etcd_url, cluster_name)
    loop = loop_with(conf, lease, store, change)
    host = cloud.hosts[0]
    cloud.fail(host, 'crash')
    for _ in range(3):
        sentence = loop.run_cycle()
        assert sentence.startswith("cycle failed closed (KeyError: 'state')")
        assert loop.hold_reason == 'cycle failed'
    assert loop.metrics.value('freezer_dr_cycle_errors_total') == 3
    assert '\nfreezer_dr_cycle_errors_total 3.0\n' in loop.metrics.render()
    wait_for(lambda: admin_mails(cloud, 'cycle_error'), 20, 'the alert')
    loop.run_cycle()
    assert len(admin_mails(cloud, 'cycle_error')) == 1
    time.sleep(4.5)          # past service_down_time + the window
    assert cloud.power(host) == 'on'
    broken['on'] = False
    cycles_until(loop, lambda s: f'host {host} confirmed down' in s)


def test_a_host_with_unknown_state_is_blind_and_the_others_recover(
        sim_cloud_factory, leader, etcd_url, cluster_name):
    """Defect 4: hosts the monitor cannot read (a down cell) are never
    fenced, admins hear of it once, every other host is still handled."""
    cloud = sim_cloud_factory(hosts=5, instances=5, service_down_time=2.0)
    lease, store = leader
    blind = set(cloud.hosts[3:])

    def change(observations):
        return [HostObservation(host=o.host, state='unknown',
                                evidence={'unknown': 'cell down'})
                if o.host in blind else o for o in observations]

    conf = make_conf(cloud, etcd_url, cluster_name)
    loop = loop_with(conf, lease, store, change)
    for host in blind:
        cloud.fail(host, 'crash')
    failed = cloud.hosts[0]
    cloud.fail(failed, 'crash')
    sentence = cycles_until(loop, lambda s: f'{failed} confirmed down' in s)
    assert '2 host(s) blind (state unknown)' in sentence
    cycles_until(loop, lambda s: not loop.busy() or 'done' in s,
                 timeout=60)
    ended = [r for r in store.history(limit=5) if r.host == failed]
    assert ended and ended[0].step == 'done'
    for host in blind:
        assert cloud.power(host) == 'on'           # never fenced
    wait_for(lambda: admin_mails(cloud, 'hosts_unknown'), 20, 'the alert')
    for _ in range(3):
        loop.run_cycle()
    time.sleep(1.0)
    assert len(admin_mails(cloud, 'hosts_unknown')) == 1


def test_an_empty_host_list_is_blindness_not_all_well(
        cloud, leader, etcd_url, cluster_name):
    """Minor: a monitor answer with no hosts, or far fewer hosts than
    before, fails closed."""
    lease, store = leader
    answer = {'keep': None}

    def change(observations):
        keep = answer['keep']
        return observations if keep is None else observations[:keep]

    loop = loop_with(make_conf(cloud, etcd_url, cluster_name), lease,
                     store, change)
    assert loop.run_cycle() == 'all 4 hosts in service up'
    answer['keep'] = 0
    sentence = loop.run_cycle()
    assert sentence.startswith('blind: monitor unavailable (the monitor '
                               'reported no compute hosts)')
    answer['keep'] = 1
    sentence = loop.run_cycle()
    assert '3 of 4 hosts vanished from the monitor' in sentence
    assert loop.hold_reason == 'monitor unavailable'


def test_a_gap_in_watching_restarts_the_confirmation_window(
        cloud, leader, etcd_url, cluster_name):
    """Defect 5: a suspect whose window began before a leaderless gap,
    and that was up during the gap, is not fenced on the first look."""
    lease, store = leader
    conf = make_conf(cloud, etcd_url, cluster_name,
                     coordination={'lease_ttl': 3.0},
                     engine={'poll_interval': 0.5},
                     monitor={'confirm_window': 8.0})
    loop = engine_loop.build(conf, lease, store)
    host = cloud.hosts[0]
    cloud.fail(host, 'crash')
    # watched for most of its 8 s window...
    cycles_until(loop, lambda s: f'host {host} down' in s and store.get(
        'state')['suspects'][host]['watched'] >= 5.0)
    # ...then nobody watches: the host comes back, then fails again
    cloud.recover(host)
    time.sleep(2.0)
    cloud.fail(host, 'crash')
    time.sleep(4.5)        # > service_down_time + gap limit (3 + 2 x 0.5)
    loop = engine_loop.build(conf, lease, store)      # a new leader
    sentence = cycles_until(loop, lambda s: host in s)
    assert sentence.startswith(f'host {host} down 0 s of 8 s '
                               f'confirmation window'), sentence
    assert cloud.power(host) == 'on'


def test_the_storm_hold_is_in_place_before_the_storm_alert_is_sent(
        cloud, leader, etcd_url, cluster_name):
    """Minor: a slow alert never leaves the gates open."""
    lease, store = leader
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name),
                             lease, store)
    seen = []
    real = loop.alerts.submit

    def slow_alert(kind, *args, **kwargs):
        seen.append((kind, loop.host_hold(cloud.hosts[0])))
        return real(kind, *args, **kwargs)

    loop.alerts.submit = slow_alert
    for host in cloud.hosts[:2]:
        cloud.fail(host, 'crash')
    cycles_until(loop, lambda s: s.startswith('storm'))
    assert ('storm', 'storm guard') in seen
    assert ('storm', None) not in seen


def test_once_with_etcd_unreachable_says_one_line(tmp_path):
    """Minor: ``freezer-dr --once`` without etcd: one line, exit 1."""
    conf = tmp_path / 'f.conf'
    conf.write_text('[coordination]\nbackend_url = etcd3+http://127.0.0.1:9'
                    '\nhttp_timeout = 1\n')
    done = subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.service', '--config-file',
         str(conf), '--once'], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done
    assert 'Traceback' not in done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and 'etcd' in lines[0], done.stdout


def test_missed_heartbeats_make_a_suspect_before_nova_calls_it_down(
        sim_cloud_factory, leader, etcd_url, cluster_name):
    """Issue 10: with Nova's service_down_time far away (30 s here), a
    host whose heartbeats (1 s) stopped is suspected after 3 missed ones
    and recovered while Nova still calls it up."""
    cloud = sim_cloud_factory(hosts=4, instances=4, service_down_time=30.0)
    lease, store = leader
    conf = make_conf(cloud, etcd_url, cluster_name,
                     monitor={'confirm_window': 0.0})
    loop = engine_loop.build(conf, lease, store)
    cycles_until(loop, lambda s: s == 'all 4 hosts in service up')
    for _ in range(4):            # learn the 1 s period
        loop.run_cycle()
        time.sleep(1.0)
    host = cloud.hosts[0]
    started = time.monotonic()
    cloud.fail(host, 'crash')
    cycles_until(loop, lambda s: f'host {host} confirmed down' in s)
    assert time.monotonic() - started < 15       # Nova says down at 30 s
    record = store.get_recovery(host) or store.history(limit=1)[0]
    evidence = record.evidence['observation']
    assert evidence['state'] == 'up'             # Nova still called it up
    assert evidence['evidence']['missed_heartbeats'] >= 3
    assert evidence['evidence']['period_learned']


def test_a_host_its_bmc_reads_off_needs_no_confirmation_window(
        cloud, leader, etcd_url, cluster_name):
    """Issue 10: evidence that settles it shortens the wait."""
    lease, store = leader
    conf = make_conf(cloud, etcd_url, cluster_name,
                     monitor={'confirm_window': 60.0})
    loop = engine_loop.build(conf, lease, store)
    host = cloud.hosts[0]
    cloud.fail(host, 'power')                 # off: its BMC says so
    sentence = cycles_until(loop, lambda s: f'{host} confirmed down' in s,
                            timeout=40)
    assert f'host {host} read OFF by its BMC' in sentence
    log = cloud.bmc_log()
    assert invariants.off_commands(log, host) == []   # reads only


def test_heartbeats_stopping_on_many_hosts_at_once_is_blindness(
        sim_cloud_factory, leader, etcd_url, cluster_name):
    """Issue 10: three of five hosts fall silent together (a stalled
    conductor looks the same): no fencing, the monitor is blind."""
    cloud = sim_cloud_factory(hosts=5, instances=5, service_down_time=30.0)
    lease, store = leader
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name,
                                       monitor={'confirm_window': 0.0}),
                             lease, store)
    cycles_until(loop, lambda s: s == 'all 5 hosts in service up')
    for host in cloud.hosts[:3]:
        cloud.fail(host, 'partition')
    sentence = cycles_until(loop, lambda s: s.startswith('blind'))
    assert 'heartbeats stopped on 3 of 5 hosts at once' in sentence
    assert store.recoveries() == []
    for host in cloud.hosts[:3]:
        assert cloud.power(host) == 'on'


def test_an_unreadable_request_is_removed_and_the_cluster_goes_on(
        cloud, leader, etcd_url, cluster_name):
    """Review (liveness): one operator request written by a newer version
    (or by hand) no longer stops every cycle; it is removed and admins
    hear of it."""
    import json
    lease, store = leader
    store.client.put(f'{store.prefix}requests/retry/{cloud.hosts[1]}',
                     json.dumps({'schema': 99, 'value': {}}))
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name),
                             lease, store)
    host = cloud.hosts[0]
    cloud.fail(host, 'crash')
    cycles_until(loop, lambda s: f'host {host} confirmed down' in s)
    assert store.requests('retry', {}) == {}
    wait_for(lambda: admin_mails(cloud, 'request_unreadable'), 20,
             'the alert')


def test_one_broken_inventory_entry_does_not_stop_the_others(
        cloud, leader, etcd_url, cluster_name):
    """Review (liveness): a leader whose inventory has one host it cannot
    build (its password file went missing) still recovers the others;
    the broken host is held and admins are told."""
    import yaml
    lease, store = leader
    broken, failed = cloud.hosts[1], cloud.hosts[0]
    with open(cloud.nodes_yaml) as f:
        nodes = yaml.safe_load(f)
    level = nodes['nodes'][broken]['fencing'][0]
    level.pop('password', None)
    level['password_file'] = '/nonexistent/bmc-password'
    with open(cloud.nodes_yaml, 'w') as f:
        yaml.safe_dump(nodes, f)
    loop = engine_loop.build(make_conf(cloud, etcd_url, cluster_name),
                             lease, store)
    cloud.fail(failed, 'crash')
    cycles_until(loop, lambda s: not loop.busy() and any(
        r.host == failed for r in store.history(limit=3)), timeout=90)
    assert store.history(limit=1)[0].step == 'done'
    wait_for(lambda: admin_mails(cloud, 'inventory_broken'), 20,
             'the alert')
