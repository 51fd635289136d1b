"""Looking at the cloud: one cheap compute call against the simulator."""
from __future__ import annotations

import time

from freezer_dr import cloud
from freezer_dr import sight
from freezer_dr.demo.etcd_server import free_port


def connect_to(clouds_yaml: str):
    return lambda: cloud.connect_to('sim', clouds_yaml, None, 2.0, '2.94')


def test_a_look_at_a_working_cloud_sees(sim_cloud):
    published = []
    seer = sight.CloudSight(connect_to(sim_cloud.clouds_yaml), 1.0,
                            published.append)
    before = time.time()
    assert seer.look()
    assert seer.sees and seer.error is None
    assert before <= seer.seen_at == seer.checked_at
    assert seer.record() == {'cloud_seen_at': seer.seen_at,
                             'cloud_checked_at': seer.checked_at,
                             'cloud_error': None}
    seer.start()
    try:
        deadline = time.monotonic() + 10
        while len(published) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        seer.stop()
    assert len(published) >= 2 and all(p['cloud_error'] is None
                                       for p in published)


def test_a_cloud_out_of_reach_is_blind_with_a_reason(sim_cloud, tmp_path):
    import yaml
    with open(sim_cloud.clouds_yaml) as f:
        clouds = yaml.safe_load(f)
    clouds['clouds']['sim']['auth']['auth_url'] = \
        f'http://127.0.0.1:{free_port()}/v3'
    path = tmp_path / 'clouds.yaml'
    path.write_text(yaml.safe_dump(clouds))
    seer = sight.CloudSight(connect_to(str(path)), 1.0, lambda r: None)
    assert not seer.look()
    assert not seer.sees
    assert seer.seen_at is None and seer.checked_at is not None
    assert 'connection failed' in seer.error


def test_a_missing_clouds_yaml_is_blind_and_named(tmp_path):
    seer = sight.CloudSight(connect_to(str(tmp_path / 'nope.yaml')), 1.0,
                            lambda r: None)
    assert not seer.look()
    assert 'clouds_yaml' in seer.error


def test_look_interval_is_at_most_ten_seconds():
    assert sight.look_interval(30) == 10
    assert sight.look_interval(300) == 10
    assert sight.look_interval(6) == 2


def test_once_connected_each_look_is_one_request(sim_cloud):
    """Counted on the wire: the Connection's own HTTP session."""
    sent: list[str] = []

    def connect():
        conn = cloud.connect_to('sim', sim_cloud.clouds_yaml, None, 2.0,
                                '2.94')
        conn.session.session.hooks['response'].append(
            lambda resp, *args, **kwargs: sent.append(
                f'{resp.request.method} {resp.request.path_url}'))
        return conn

    seer = sight.CloudSight(connect, 1.0, lambda r: None)
    assert seer.look()          # token, discovery and the look itself
    for _ in range(3):
        before = len(sent)
        assert seer.look()
        assert len(sent) == before + 1, sent[before:]
        assert sent[-1].startswith('GET ') and 'os-services' in sent[-1]
        assert f'host={sight.PROBE_HOST}' in sent[-1]
