"""``freezer-dr-manage`` as a real process against a real etcd (and real
replicas): status with and without a leader, pause/resume, failures."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import yaml

from freezer_dr import manage
from freezer_dr.demo import config as demo_config
from freezer_dr.demo.etcd_server import free_port
from freezer_dr.demo.replica import service_env
from freezer_dr.ha import store as ha_store
from tests import replicas as rp


@pytest.fixture
def manage_conf(tmp_path, etcd_url, cluster_name):
    return demo_config.write_config(str(tmp_path / 'manage.conf'), {
        'coordination': {'backend_url': etcd_url, 'cluster': cluster_name,
                         'lease_ttl': 3, 'http_timeout': 0.5}})


def run_manage(config_file: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.manage', '--config-file',
         config_file, *args], env=service_env(), capture_output=True,
        text=True, timeout=60)


def status(config_file: str) -> dict:
    result = run_manage(config_file, 'status', '-f', 'json')
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_status_without_a_leader(manage_conf, cluster_name):
    found = status(manage_conf)
    assert found['cluster'] == cluster_name
    assert found['leader'] is None
    assert found['members'] == []
    assert found['paused'] is None
    assert found['fencing'] == 'fencing: not checked yet'
    assert found['recoveries'] == [] and found['history'] == []
    table = run_manage(manage_conf, 'status')
    assert table.returncode == 0
    assert 'leader:  none elected' in table.stdout
    assert 'fencing: not checked yet' in table.stdout.splitlines()


def test_status_shows_the_leader_and_members_of_running_replicas(
        tmp_path, etcd_url, cluster_name, manage_conf):
    with rp.ReplicaSet(str(tmp_path), [etcd_url] * 2, cluster=cluster_name,
                       lease_ttl=3) as replicas:
        leader = replicas.wait_for_leader()
        epoch = leader.leader().body['epoch']
        found = status(manage_conf)
        yaml_result = run_manage(manage_conf, 'status', '-f', 'yaml')
        table_result = run_manage(manage_conf, 'status')
    assert found['leader']['member_id'] == leader.member_id
    assert found['leader']['epoch'] == epoch
    assert 0 < found['leader']['lease_remaining'] <= 3
    assert found['leader']['since'].endswith('Z')
    roles = {m['member_id']: m['role'] for m in found['members']}
    assert roles == {r.member_id: ('leader' if r is leader else 'standby')
                     for r in replicas}
    for member in found['members']:
        assert member['pid'] == replicas.by_id(member['member_id']).pid
    assert yaml.safe_load(yaml_result.stdout)['leader']['member_id'] == \
        leader.member_id
    assert f'leader:  {leader.member_id}  epoch {epoch}' in \
        table_result.stdout


def test_status_lists_every_etcd_member(tmp_path, etcd_cluster,
                                         cluster_name):
    hosts = ','.join(f'127.0.0.1:{m.client_port}'
                     for m in etcd_cluster.members)
    conf = demo_config.write_config(str(tmp_path / 'm.conf'), {
        'coordination': {'backend_url': f'etcd3+http://{hosts}',
                         'cluster': cluster_name, 'http_timeout': 0.5}})
    raft_leader = etcd_cluster.leader()
    found = status(conf)['etcd']
    assert [e['endpoint'] for e in found] == hosts.split(',')
    assert all(e['reachable'] and e['version'] for e in found)
    assert [e['leader'] for e in found] == [
        m is raft_leader for m in etcd_cluster.members]
    assert len({e['raft_term'] for e in found}) == 1
    # a follower goes down (the raft leader keeps its term: no election
    # to wait for)
    index, down = next((i, m) for i, m in enumerate(etcd_cluster.members)
                       if m is not raft_leader)
    down.kill()
    found = status(conf)['etcd']
    assert found[index]['reachable'] is False and found[index]['error']
    assert found[index]['leader'] is None
    assert found[index]['version'] is None
    assert [bool(e['leader']) for e in found] == [
        m is raft_leader for m in etcd_cluster.members]
    table = run_manage(conf, 'status')
    assert table.returncode == 0, table.stderr
    assert 'RAFT_LEADER' in table.stdout
    assert f'127.0.0.1:{down.client_port}  no' in table.stdout


def test_status_over_tls_with_the_bundle_set(tmp_path, tls_etcd_cluster,
                                             cluster_name):
    conf = demo_config.write_config(str(tmp_path / 'm.conf'), {
        'coordination': {'backend_url': tls_etcd_cluster.backend_url(),
                         'cluster': cluster_name, 'http_timeout': 1.0}})
    env = dict(service_env(),
               REQUESTS_CA_BUNDLE='/etc/ssl/certs/ca-certificates.crt')
    result = subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.manage', '--config-file',
         conf, 'status', '-f', 'json'], env=env, capture_output=True,
        text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)['etcd']
    assert len(found) == 3 and all(e['reachable'] for e in found)
    assert sum(e['leader'] for e in found) == 1


def test_pause_and_resume_round_trip(manage_conf, etcd_client,
                                     cluster_name):
    store = ha_store.CheckpointStore(etcd_client, cluster_name)
    result = run_manage(manage_conf, 'pause', '--reason',
                        'switch maintenance', '--by', 'ops-alice')
    assert result.returncode == 0, result.stderr
    assert store.paused()['reason'] == 'switch maintenance'
    paused = status(manage_conf)['paused']
    assert paused['reason'] == 'switch maintenance'
    assert paused['by'] == 'ops-alice'
    assert paused['at'].endswith('Z')
    assert 'paused:  YES: switch maintenance' in run_manage(
        manage_conf, 'status').stdout
    result = run_manage(manage_conf, 'resume')
    assert result.returncode == 0, result.stderr
    assert store.paused() is None
    assert status(manage_conf)['paused'] is None
    again = run_manage(manage_conf, 'resume')
    assert again.returncode == 0 and 'was not paused' in again.stdout


def test_status_watch_refreshes_until_interrupted(manage_conf):
    proc = subprocess.Popen(
        [sys.executable, '-m', 'freezer_dr.cmd.manage', '--config-file',
         manage_conf, 'status', '--watch', '0.2'], env=service_env(),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while sum('leader:  none elected' in line for line in lines) < 3:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_pause_needs_a_reason(manage_conf):
    result = run_manage(manage_conf, 'pause')
    assert result.returncode == 2
    assert '--reason' in result.stderr


def test_unreachable_etcd_is_a_clear_error_with_exit_code_1(tmp_path):
    url = f'etcd3+http://127.0.0.1:{free_port()}'
    conf = demo_config.write_config(str(tmp_path / 'm.conf'), {
        'coordination': {'backend_url': url, 'http_timeout': 0.5}})
    for args in (['status'], ['pause', '--reason', 'x'], ['resume']):
        result = run_manage(conf, *args)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith(
            f'freezer-dr-manage: error: etcd unreachable at {url}')
        assert 'Traceback' not in result.stderr


def test_bad_backend_url_exits_2(tmp_path):
    conf = demo_config.write_config(str(tmp_path / 'm.conf'), {
        'coordination': {'backend_url': 'http://127.0.0.1:2379'}})
    result = run_manage(conf, 'status')
    assert result.returncode == 2
    assert '[coordination] backend_url' in result.stderr


def test_every_command_module_registers_itself():
    names = {m.__name__.rsplit('.', 1)[1] for m in manage.command_modules()}
    assert {'status', 'pause'} <= names
    assert 'context' not in names and 'output' not in names



@pytest.mark.parametrize('command', ['show', 'retry'])
def test_unknown_recovery_is_named_with_exit_code_1(manage_conf, command):
    result = run_manage(manage_conf, 'recovery', command, 'no-such-id')
    assert result.returncode == 1
    assert result.stdout.strip() == "no recovery 'no-such-id'"
