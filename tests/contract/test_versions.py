"""Contract: compute version document and microversion negotiation."""

import requests

from tests import cloud_helpers as helpers


def _version(text: str) -> tuple[int, int]:
    major, minor = text.split('.')
    return int(major), int(minor)


def test_version_document_offers_the_microversions_freezer_dr_uses(conn):
    endpoint = conn.compute.get_endpoint().rstrip('/')
    token = conn.session.get_token()
    resp = requests.get(endpoint + '/', headers={'X-Auth-Token': token},
                        timeout=30)
    assert resp.status_code == 200
    version = resp.json()['version']
    assert (version['id'], version['status']) == ('v2.1', 'CURRENT')
    assert _version(version['min_version']) == (2, 1)
    # 2.53 (service ids), 2.87 (hypervisors), 2.94 / 2.95 (evacuate).
    assert _version(version['version']) >= (2, 95)


def test_requested_microversion_is_echoed(cloud):
    pinned = helpers.connect(cloud, compute_api_version='2.94')
    resp = pinned.compute.get('/os-services', microversion='2.94')
    assert resp.status_code == 200
    assert resp.headers['OpenStack-API-Version'] == 'compute 2.94'
    assert resp.headers['X-OpenStack-Nova-API-Version'] == '2.94'
    assert all('forced_down' in s for s in resp.json()['services'])
