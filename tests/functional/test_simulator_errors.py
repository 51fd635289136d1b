"""Bad input and injected faults: the simulator answers as Nova would."""
from __future__ import annotations

import time

import pytest
import requests
from openstack import exceptions as os_exc


@pytest.fixture
def nova(sim_cloud):
    """(base URL, headers with an admin token) for raw HTTP calls."""
    token = sim_cloud.connection().session.get_token()
    return sim_cloud.endpoints['nova'], {'X-Auth-Token': token}


def test_version_documents(sim_cloud):
    root = sim_cloud.endpoints['nova'].rsplit('/v2.1', 1)[0]
    versions = requests.get(root + '/', timeout=10).json()['versions']
    current = [v for v in versions if v['status'] == 'CURRENT'][0]
    assert (current['id'], current['min_version'], current['version']) == (
        'v2.1', '2.1', '2.104')
    doc = requests.get(root + '/v2.1/', timeout=10).json()['version']
    assert doc['id'] == 'v2.1'


@pytest.mark.parametrize('headers,status,echo', [
    ({}, 200, '2.1'),
    ({'OpenStack-API-Version': 'compute 2.53'}, 200, '2.53'),
    ({'X-OpenStack-Nova-API-Version': '2.60'}, 200, '2.60'),
    ({'OpenStack-API-Version': 'compute latest'}, 200, '2.104'),
    ({'OpenStack-API-Version': 'compute 2.105'}, 406, None),
    ({'OpenStack-API-Version': 'compute 3.0'}, 406, None),
    ({'OpenStack-API-Version': 'compute two'}, 400, None),
])
def test_microversion_negotiation(nova, headers, status, echo):
    base, auth = nova
    resp = requests.get(base + '/os-services', headers={**auth, **headers},
                        timeout=10)
    assert resp.status_code == status
    if echo:
        assert resp.headers['OpenStack-API-Version'] == f'compute {echo}'
        assert resp.headers['X-OpenStack-Nova-API-Version'] == echo
    else:
        fault = next(iter(resp.json().values()))
        assert fault['code'] == status


def test_unknown_server_is_item_not_found(nova):
    base, auth = nova
    resp = requests.get(base + '/servers/nope', headers=auth, timeout=10)
    assert resp.status_code == 404
    assert resp.json() == {'itemNotFound': {
        'code': 404, 'message': 'Instance nope could not be found.'}}


def test_malformed_json_is_bad_request(sim_cloud, nova):
    base, auth = nova
    server = next(iter(sim_cloud.connection().compute.servers(
        all_projects=True)))
    resp = requests.post(f'{base}/servers/{server.id}/action',
                         data=b'{"evacuate": ', timeout=10,
                         headers={**auth, 'Content-Type': 'application/json'})
    assert resp.status_code == 400
    assert resp.json()['badRequest']['code'] == 400


def test_service_update_errors(nova):
    base, auth = nova
    v253 = {**auth, 'OpenStack-API-Version': 'compute 2.53'}
    resp = requests.put(base + '/os-services/not-a-uuid', json={
        'forced_down': True}, headers=v253, timeout=10)
    assert resp.json() == {'badRequest': {
        'code': 400, 'message': 'Invalid uuid not-a-uuid'}}
    services = requests.get(base + '/os-services', headers=v253,
                            timeout=10).json()['services']
    conductor = [s for s in services if s['binary'] == 'nova-conductor'][0]
    resp = requests.put(base + f'/os-services/{conductor["id"]}', json={
        'status': 'disabled'}, headers=v253, timeout=10)
    assert resp.status_code == 400
    assert 'Only nova-compute services can be updated' in resp.text
    compute = [s for s in services if s['binary'] == 'nova-compute'][0]
    resp = requests.put(base + f'/os-services/{compute["id"]}', json={},
                        headers=v253, timeout=10)
    assert resp.status_code == 400
    assert 'No updates were requested' in resp.text


@pytest.mark.parametrize('token', [None, 'bogus'])
def test_missing_or_invalid_token_is_401(sim_cloud, token):
    headers = {'X-Auth-Token': token} if token else {}
    resp = requests.get(sim_cloud.endpoints['nova'] + '/os-services',
                        headers=headers, timeout=10)
    assert resp.status_code == 401
    assert resp.json()['error']['code'] == 401
    assert 'WWW-Authenticate' in resp.headers


def test_control_api_rejects_bad_hosts_and_modes(sim_cloud):
    from freezer_dr.simulator.handle import SimError
    with pytest.raises(SimError, match='404'):
        sim_cloud.fail('compute-99', 'power')
    with pytest.raises(SimError, match='400'):
        sim_cloud.fail('compute-1', 'melt')
    with pytest.raises(SimError, match='404'):
        sim_cloud.power('compute-99')
    assert sim_cloud.status()['hosts'][0]['failure'] is None


@pytest.mark.parametrize('status,exc', [
    (500, os_exc.HttpException), (503, os_exc.HttpException)])
def test_injected_errors(sim_cloud, status, exc):
    conn = sim_cloud.connection()
    conn.compute.services()                  # authenticate first
    sim_cloud.inject(error_rate={'nova': 1.0}, error_status=status)
    with pytest.raises(exc) as info:
        list(conn.compute.services())
    assert info.value.status_code == status
    sim_cloud.inject(error_rate={'nova': 0.0})
    assert list(conn.compute.services())


def test_injected_latency(sim_cloud):
    conn = sim_cloud.connection()
    list(conn.compute.services())
    sim_cloud.inject(latency={'nova': 0.3})
    started = time.monotonic()
    list(conn.compute.services())
    assert time.monotonic() - started >= 0.3


def test_unsupported_microversion_echoes_the_request(nova):
    base, auth = nova
    resp = requests.get(base + '/os-services', timeout=10, headers={
        **auth, 'OpenStack-API-Version': 'compute 9.99'})
    assert resp.status_code == 406
    assert resp.headers['OpenStack-API-Version'] == 'compute 9.99'
    assert 'maximum is 2.104' in resp.json()['computeFault']['message']


def test_hypervisor_list_hangs_on_a_dead_compute_still_counted_up(
        sim_cloud_factory):
    cloud = sim_cloud_factory(bmcs=False, rpc_timeout=1.0,
                              service_down_time=30.0)
    conn = cloud.connection()
    cloud.fail('compute-1', 'crash')
    with pytest.raises(os_exc.HttpException) as info:
        list(conn.compute.hypervisors(details=True))     # newest version
    assert info.value.status_code == 500
    assert 'MessagingTimeout' in str(info.value)
    # 2.87 has no uptime field, hence no RPC call
    old = cloud.connection(compute_api_version='2.87')
    assert len(list(old.compute.hypervisors(details=True))) == 3
