"""Contract: bad input gets Nova's answers (404, 401) on both clouds."""

import uuid

import openstack.exceptions as os_exc
import pytest
import requests


def test_unknown_server_is_404(conn):
    server_id = str(uuid.uuid4())
    with pytest.raises(os_exc.NotFoundException) as err:
        conn.compute.get_server(server_id)
    assert f'Instance {server_id} could not be found.' in str(err.value)


def test_evacuate_unknown_server_is_404(conn):
    server_id = str(uuid.uuid4())
    with pytest.raises(os_exc.NotFoundException) as err:
        conn.compute.evacuate_server(server_id)
    assert f'Instance {server_id} could not be found.' in str(err.value)


def test_evacuate_to_unknown_host_is_404(cloud, conn):
    server_id = cloud.boot(f'nohost-{uuid.uuid4().hex[:6]}', cloud.hosts[0])
    with pytest.raises(os_exc.NotFoundException) as err:
        conn.compute.evacuate_server(server_id, host='no-such-host')
    assert 'Compute host no-such-host not found.' in str(err.value)
    assert conn.compute.get_server(server_id).compute_host == cloud.hosts[0]


@pytest.mark.parametrize('headers', [{}, {'X-Auth-Token': 'not-a-token'}],
                         ids=['missing', 'invalid'])
def test_compute_api_without_a_valid_token_is_401(conn, headers):
    endpoint = conn.compute.get_endpoint().rstrip('/')
    resp = requests.get(endpoint + '/servers/detail', headers=headers,
                        timeout=30)
    assert resp.status_code == 401
    assert resp.json()['error']['code'] == 401
