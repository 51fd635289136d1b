"""The simulated Keystone v3: tokens, catalog, users, role assignments."""
from __future__ import annotations

import pytest
import requests
import yaml
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3


@pytest.fixture
def admin_auth(sim_cloud):
    with open(sim_cloud.clouds_yaml) as f:
        return yaml.safe_load(f)['clouds']['sim']['auth']


def password_session(auth, **overrides) -> ks_session.Session:
    args = dict(auth_url=auth['auth_url'], username=auth['username'],
                password=auth['password'], project_name='admin',
                user_domain_name='Default', project_domain_name='Default')
    args.update(overrides)
    return ks_session.Session(auth=v3.Password(**args))


def test_password_token_carries_catalog_and_roles(sim_cloud, admin_auth):
    sess = password_session(admin_auth)
    access = sess.auth.get_access(sess)
    assert access.project_name == 'admin'
    assert 'admin' in access.role_names
    nova = sess.get_endpoint(service_type='compute', interface='public')
    assert nova == sim_cloud.endpoints['nova']
    assert sess.get_endpoint(service_type='identity') == admin_auth[
        'auth_url']


def test_wrong_password_is_401_with_keystone_body(admin_auth):
    resp = requests.post(admin_auth['auth_url'] + '/auth/tokens', json={
        'auth': {'identity': {'methods': ['password'], 'password': {
            'user': {'name': 'admin', 'domain': {'name': 'Default'},
                     'password': 'wrong'}}}}}, timeout=10)
    assert resp.status_code == 401
    assert resp.json()['error']['code'] == 401
    assert resp.json()['error']['title'] == 'Unauthorized'
    assert resp.headers['WWW-Authenticate'].startswith('Keystone uri=')
    with pytest.raises(ks_exc.Unauthorized):
        sess = password_session(admin_auth, password='wrong')
        sess.get_token()


def test_token_auth_and_validation(admin_auth):
    token = password_session(admin_auth).get_token()
    sess = ks_session.Session(auth=v3.Token(
        auth_url=admin_auth['auth_url'], token=token,
        project_name='admin', project_domain_name='Default'))
    second = sess.get_token()
    assert second != token
    url = admin_auth['auth_url'] + '/auth/tokens'
    ok = requests.get(url, headers={'X-Auth-Token': token,
                                    'X-Subject-Token': second}, timeout=10)
    assert ok.status_code == 200
    assert ok.headers['X-Subject-Token'] == second
    assert ok.json()['token']['project']['name'] == 'admin'
    missing = requests.get(url, headers={'X-Auth-Token': token,
                                         'X-Subject-Token': 'nope'},
                           timeout=10)
    assert missing.status_code == 404
    anonymous = requests.get(url, headers={'X-Subject-Token': second},
                             timeout=10)
    assert anonymous.status_code == 401


def test_users_of_a_project_with_their_email(sim_cloud):
    conn = sim_cloud.connection()
    project = conn.identity.find_project('project-1')
    assignments = list(conn.identity.role_assignments(
        scope_project_id=project.id, include_names=True))
    assert {a.user['name'] for a in assignments} == {
        'project-1-user-1', 'project-1-user-2'}
    assert {a.role['name'] for a in assignments} == {'member'}
    assert {a.scope['project']['id'] for a in assignments} == {project.id}
    user = conn.identity.get_user(assignments[0].user['id'])
    assert user.email == f'{user.name}@example.org'


def test_servers_owners_are_keystone_users(sim_cloud):
    conn = sim_cloud.connection()
    server = next(iter(conn.compute.servers(all_projects=True)))
    owner = conn.identity.get_user(server.user_id)
    assert conn.identity.get_project(server.project_id).name.startswith(
        'project-')
    assert owner.email.endswith('@example.org')


def test_unknown_user_and_project_are_404(sim_cloud):
    conn = sim_cloud.connection()
    headers = {'X-Auth-Token': conn.session.get_token()}
    base = sim_cloud.endpoints['keystone']
    user = requests.get(base + '/users/nope', headers=headers, timeout=10)
    assert user.status_code == 404
    assert user.json()['error']['message'] == 'Could not find user: nope.'
    project = requests.get(base + '/projects/nope', headers=headers,
                           timeout=10)
    assert project.status_code == 404
    assert project.json()['error']['title'] == 'Not Found'
