"""A blind leader hands over to a standby that sees the cloud, never to one
that is blind too; a blind standby leaves a free lease to one that sees.

Real replica processes, a real etcd and the simulated cloud; a replica is
made blind by a clouds.yaml whose Keystone is a closed port.
"""
from __future__ import annotations

import time

import pytest
import yaml

from freezer_dr.demo import config as demo_config
from freezer_dr.demo.cluster import wait_for as wait_until
from freezer_dr.demo.etcd_server import free_port
from freezer_dr.ha import members as ha_members
from tests import replicas as rp

TTL = 5.0
HANDOVER_AFTER = 6.0        # looks every 2 s
STARTUP = 90                # a shared, loaded machine starts Python slowly




def blind_clouds_yaml(sim, path) -> str:
    """The simulator's clouds.yaml with Keystone on a closed port."""
    with open(sim.clouds_yaml) as f:
        clouds = yaml.safe_load(f)
    auth = clouds['clouds']['sim']['auth']
    auth['auth_url'] = f'http://127.0.0.1:{free_port()}/v3'
    path.write_text(yaml.safe_dump(clouds))
    return str(path)


@pytest.fixture
def cluster(etcd_url, sim_cloud, tmp_path):
    """``cluster(blind=[indexes])`` -> a not yet started ReplicaSet of 3."""
    made: list[rp.ReplicaSet] = []

    def make(blind: list[int]) -> rp.ReplicaSet:
        extra = demo_config.merge(demo_config.read_sections(
            sim_cloud.config_file), {
            'engine': {'blind_handover_after': HANDOVER_AFTER,
                       'poll_interval': 0.5},
            # every side effect must fit in the lease (S2)
            'cloud': {'api_timeout': 3}, 'fencing': {'call_timeout': 2},
            'email': {'timeout': 3}})
        replicas = rp.ReplicaSet(str(tmp_path), [etcd_url] * 3,
                                 lease_ttl=TTL, extra=extra)
        blind_yaml = blind_clouds_yaml(sim_cloud, tmp_path / 'blind.yaml')
        for index in blind:
            replica = replicas[index]
            sections = demo_config.merge(
                demo_config.read_sections(replica.config_file),
                {'cloud': {'clouds_yaml': blind_yaml}})
            demo_config.write_config(replica.config_file, sections)
        made.append(replicas)
        return replicas

    yield make
    for replicas in made:
        replicas.stop()


def records(etcd_url, cluster_name) -> dict[str, dict]:
    return {m['member_id']: m for m in ha_members.list_members(
        etcd_url, cluster_name, 1.0)}


def test_blind_leader_hands_over_to_a_standby_that_sees(cluster, etcd_url):
    replicas = cluster(blind=[0])
    blind = replicas[0]
    blind.start()
    blind.wait_until_serving(STARTUP)
    assert replicas.wait_for_leader(timeout=20) is blind
    with rp.LeadershipMonitor(replicas) as monitor:
        for replica in replicas.replicas[1:]:
            replica.start()
            replica.wait_until_serving(STARTUP)
        # the standbys publish that they see; the blind leader does not
        wait_until(lambda: all(
            (records(etcd_url, replicas.cluster).get(r.member_id) or {}).get(
                'cloud_seen_at') for r in replicas.replicas[1:]), 20,
            'standbys publishing that they see')
        mine = records(etcd_url, replicas.cluster)[blind.member_id]
        assert mine['cloud_seen_at'] is None and mine['cloud_error']
        new = wait_until(
            lambda: next((r for r in replicas.leaders() if r is not blind),
                         None), 4 * HANDOVER_AFTER, 'a handover')
        time.sleep(2 * TTL)         # the blind one does not take it back
    assert new in replicas.replicas[1:]
    assert monitor.overlap() == 0, monitor.summary()
    assert monitor.succession() == [blind.member_id, new.member_id], \
        monitor.summary()
    log = blind.log_text()
    assert 'handing leadership over to a standby that sees the cloud (' \
        in log and new.member_id in log
    assert 'no longer leader' in log and 'released' in log


def test_no_handover_to_a_standby_that_is_blind_too(cluster, etcd_url):
    replicas = cluster(blind=[0, 1, 2])
    for replica in replicas:
        replica.start()
    for replica in replicas:
        replica.wait_until_serving(STARTUP)
    leader = replicas.wait_for_leader(timeout=20)
    epoch = leader.leader().body['epoch']
    with rp.LeadershipMonitor(replicas) as monitor:
        time.sleep(HANDOVER_AFTER + 3 * TTL)
    assert monitor.succession() == [leader.member_id], monitor.summary()
    assert leader.leader().body['epoch'] == epoch
    assert 'no standby sees the cloud either' in leader.log_text()


def test_blind_standby_leaves_a_free_lease_to_one_that_sees(cluster,
                                                            etcd_url):
    """The campaign rule: when the leader dies, the blind standby defers."""
    replicas = cluster(blind=[2])
    for replica in replicas.replicas[:2]:
        replica.start()
        replica.wait_until_serving(STARTUP)
    leader = replicas.wait_for_leader(timeout=20)
    blind = replicas[2]
    blind.start()
    blind.wait_until_serving(STARTUP)
    seeing = next(r for r in replicas.replicas[:2] if r is not leader)
    wait_until(lambda: (records(etcd_url, replicas.cluster).get(
        seeing.member_id) or {}).get('cloud_seen_at'), 20, 'a record')
    wait_until(lambda: 'cannot see the cloud' in blind.log_text(), 20,
               'the blind standby to have looked')
    leader.kill()
    new = replicas.wait_for_leader(timeout=6 * TTL, exclude=[leader])
    assert new is seeing
    # the blind one says so as it defers: maybe a moment after the
    # seeing one took the lease (CI saw it 11 ms later)
    wait_until(lambda: 'leaving the free lease to' in blind.log_text(), 10,
               'the blind standby to say it defers')
