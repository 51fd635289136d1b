"""Three real replica processes against a real etcd: election, failover,
handover, partitions, SIGSTOP, etcd restart, start-up refusals.

Leadership is judged from outside, by polling every replica's ``/leader``
(``tests.replicas.LeadershipMonitor``); overlap must be exactly zero.
"""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from freezer_dr.demo import config as demo_config
from freezer_dr.demo.cluster import wait_for as wait_until
from freezer_dr.demo.replica import service_env
from freezer_dr.ha import etcd as ha_etcd
from freezer_dr.ha import lease as ha_lease
from tests import replicas as rp
from tests.fixtures.factory import started_in_dirs

TTL = 3.0




@pytest.fixture
def replica_set(tmp_path):
    """``replica_set(urls, **kwargs)`` -> started ReplicaSet, always
    stopped (and its processes reaped) at teardown."""
    def build(workdir: str, urls, **kwargs) -> rp.ReplicaSet:
        return rp.ReplicaSet(workdir, urls, lease_ttl=TTL, **kwargs)

    with started_in_dirs(tmp_path, 'set', build) as make:
        yield make


@pytest.fixture
def proxied(etcd_server, tcp_proxy_factory, replica_set):
    """Three replicas, each reaching etcd through its own proxy."""
    proxies = [tcp_proxy_factory(etcd_server.client_port) for _ in range(3)]
    replicas = replica_set([p.url for p in proxies])
    return replicas, dict(zip([r.member_id for r in replicas], proxies,
                              strict=True))


def test_three_replicas_elect_exactly_one_leader(etcd_factory, replica_set):
    etcd = etcd_factory()
    replicas = replica_set([etcd.url] * 3)
    leader = replicas.wait_for_leader()
    # each member's group record holds a lease too: count once all are in
    # (a loaded run elected a leader before the last replica joined)
    wait_until(lambda: all(f'{r.member_id} joined cluster' in r.log_text()
                           for r in replicas), 30, 'every replica to join')
    client = ha_etcd.make_client(etcd.url, 1.0)
    leases_before = len(ha_etcd.list_leases(client))
    with rp.LeadershipMonitor(replicas) as monitor:
        time.sleep(2 * TTL / 3 + 1)
    assert monitor.overlap() == 0, monitor.summary()
    for i in range(len(monitor.rounds)):
        assert monitor.leaders_at(i) in ([], [leader.member_id])
    answers = replicas.answers()
    assert [k for k, a in answers.items() if a.leading] == [leader.member_id]
    epoch = answers[leader.member_id].body['epoch']
    assert isinstance(epoch, int) and epoch > 0
    for member_id, answer in answers.items():
        assert answer.body['member_id'] == member_id
        if member_id != leader.member_id:
            assert answer.code == 503 and answer.body['leader'] is False
    for replica in replicas:
        assert replica.health() == 200
    values = leader.metrics()
    assert values['freezer_dr_leader'] == 1
    assert values['freezer_dr_epoch'] == epoch
    assert values['freezer_dr_cycles_total'] >= 1
    assert 0 < values['freezer_dr_lease_remaining_seconds'] <= TTL
    standby = next(r for r in replicas if r is not leader)
    assert standby.metrics()['freezer_dr_leader'] == 0
    # standbys contend every 0.5 s, yet no lease leaks
    assert len(ha_etcd.list_leases(client)) == leases_before
    log = leader.log_text()
    assert 'cycle: ' in log and 'taking no action' in log


def test_killed_leader_is_replaced_by_a_standby(etcd_url, replica_set):
    replicas = replica_set([etcd_url] * 3)
    leader = replicas.wait_for_leader()
    epoch = leader.leader().body['epoch']
    leader.kill()
    successor = replicas.wait_for_leader(timeout=4 * TTL, exclude=[leader])
    assert successor.leader().body['epoch'] > epoch
    assert len(replicas.leaders()) == 1


def read_leader(url: str, cluster: str) -> dict | None:
    """The leader key as etcd has it (what the status CLI shows)."""
    reader = ha_lease.LeaderLease(ha_etcd.make_client(url, 1.0), cluster,
                                  'test-reader', TTL, 1.0, 0.3)
    return reader.read_leader()


def test_sigterm_hands_over_and_revokes_the_lease(etcd_url, replica_set):
    replicas = replica_set([etcd_url] * 3)
    leader = replicas.wait_for_leader()
    before = read_leader(etcd_url, replicas.cluster)
    assert before['member_id'] == leader.member_id
    with rp.LeadershipMonitor(replicas) as monitor:
        time.sleep(0.3)
        leader.terminate()
        successor = replicas.wait_for_leader(timeout=4 * TTL,
                                             exclude=[leader])
        assert leader.wait(15) == 0, leader.log_tail()
    assert monitor.overlap() == 0, monitor.summary()
    assert monitor.succession() == [leader.member_id, successor.member_id]
    assert 'released the leader lease' in leader.log_text()
    # released, not expired: the old lease is revoked
    client = ha_etcd.make_client(etcd_url, 1.0)
    assert before['lease_id'] not in ha_etcd.list_leases(client)
    after = read_leader(etcd_url, replicas.cluster)
    assert after['member_id'] == successor.member_id
    assert after['epoch'] > before['epoch']


@pytest.mark.parametrize('mode', ['blackhole', 'close'])
def test_partitioned_leader_stops_before_new_leader_starts(proxied, mode):
    replicas, proxies = proxied
    leader = replicas.wait_for_leader()
    with rp.LeadershipMonitor(replicas) as monitor:
        time.sleep(0.3)
        getattr(proxies[leader.member_id], mode)()
        cut_at = time.monotonic()
        successor = replicas.wait_for_leader(timeout=4 * TTL,
                                             exclude=[leader])
        time.sleep(0.5)
    assert monitor.overlap() == 0, monitor.summary()
    assert monitor.succession() == [leader.member_id, successor.member_id]
    stopped = monitor.last_leading(leader.member_id)
    started = monitor.first_leading(successor.member_id, after=cut_at)
    assert stopped is not None and started is not None
    assert stopped < started
    assert leader.running and leader.leader().code == 503
    # healed: the old leader stays a standby, one leader remains
    proxies[leader.member_id].forward()
    with rp.LeadershipMonitor(replicas) as monitor:
        time.sleep(TTL / 2)
    assert monitor.overlap() == 0, monitor.summary()
    assert [r.member_id for r in replicas.leaders()] == [
        successor.member_id]


def test_sigstopped_leader_does_not_lead_again_after_sigcont(etcd_url,
                                                            replica_set):
    replicas = replica_set([etcd_url] * 3)
    leader = replicas.wait_for_leader()
    with rp.LeadershipMonitor(replicas) as monitor:
        time.sleep(0.3)
        leader.pause()
        successor = replicas.wait_for_leader(timeout=4 * TTL,
                                             exclude=[leader])
        time.sleep(0.5)
        leader.resume()
        time.sleep(1.5)
    assert monitor.overlap() == 0, monitor.summary()
    assert monitor.succession() == [leader.member_id, successor.member_id]
    assert leader.leader().code == 503
    assert [r.member_id for r in replicas.leaders()] == [
        successor.member_id]


@pytest.mark.parametrize('outage', [0.0, TTL + 0.5])
def test_etcd_restart_never_gives_two_leaders(etcd_factory, replica_set,
                                              outage):
    etcd = etcd_factory()
    replicas = replica_set([etcd.url] * 3)
    leader = replicas.wait_for_leader()
    with rp.LeadershipMonitor(replicas) as monitor:
        time.sleep(0.3)
        etcd.stop()
        time.sleep(outage)
        etcd.start()
        time.sleep(1.0)
        wait_until(lambda: replicas.leaders(), 10 * TTL, 'a leader again')
        time.sleep(0.5)
    assert monitor.overlap() == 0, monitor.summary()
    assert monitor.succession()[0] == leader.member_id
    if outage > TTL:
        # the leader stood down while etcd was away, before its lease ran
        # out on etcd's side (etcd extends leases when it comes back)
        assert monitor.leaderless() > 0, monitor.summary()
    assert len(replicas.leaders()) == 1


def run_service(config_file: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.service', '--config-file',
         config_file], env=service_env(), capture_output=True, text=True,
        timeout=60)


@pytest.mark.parametrize('coordination, option', [
    ({'lease_ttl': 3, 'http_timeout': 2}, '[coordination] http_timeout'),
    ({'lease_ttl': 4, 'keepalive_interval': 3},
     '[coordination] keepalive_interval'),
    ({'backend_url': 'etcd3://127.0.0.1:2379'},
     '[coordination] backend_url'),
    ({'backend_url': 'etcd3+http://127.0.0.1:notaport'},
     '[coordination] backend_url'),
])
def test_startup_refuses_bad_settings_with_exit_code_2(tmp_path,
                                                       coordination, option):
    path = demo_config.write_config(str(tmp_path / 'bad.conf'),
                           {'coordination': coordination,
                            'api': {'bind_port': 0}})
    result = run_service(path)
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines()
              if line.startswith('freezer-dr: error:')]
    assert len(errors) == 1, result.stderr
    assert option in errors[0]
    assert 'Traceback' not in result.stderr


def test_replica_starts_without_etcd_and_leads_once_it_answers(
        etcd_server, tcp_proxy_factory, replica_set):
    proxy = tcp_proxy_factory(etcd_server.client_port)
    proxy.close()
    replicas = replica_set([proxy.url])
    replica = replicas[0]
    time.sleep(1.0)
    answer = replica.leader()
    assert answer.code == 503 and answer.body['leader'] is False
    assert replica.health() == 200          # alive, retrying
    proxy.forward()
    replicas.wait_for_leader(timeout=4 * TTL)
    assert 'etcd unavailable' in replica.log_text()
