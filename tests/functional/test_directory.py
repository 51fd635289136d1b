"""Keystone user lookup: against the simulator's Keystone, unreachable,
and dribbling."""
from __future__ import annotations

import time

import openstack
import pytest

from freezer_dr import cloud
from freezer_dr import exceptions
from freezer_dr.notifiers.directory import UserDirectory
from freezer_dr.simulator.smtp import free_tcp_port
from tests.fixtures.dribble import DribblingHttp


def test_keystone_unreachable_is_notify_failed():
    conn = openstack.connection.Connection(
        auth_type='password', identity_api_version='3',
        auth={'auth_url': f'http://127.0.0.1:{free_tcp_port()}/v3',
              'username': 'admin', 'password': 'pw-not-in-errors',
              'project_name': 'admin', 'user_domain_id': 'default',
              'project_domain_id': 'default'},
        connect_retries=0, status_code_retries=0)
    with pytest.raises(exceptions.NotifyFailed, match='Keystone') as err:
        UserDirectory(conn).members(['p-1'])
    assert 'pw-not-in-errors' not in str(err.value)


@pytest.fixture
def sim_conn(sim_cloud):
    return sim_cloud.connection()


def test_members_are_users_with_a_role_and_an_email(sim_conn):
    servers = list(sim_conn.compute.servers(all_projects=True))
    project_ids = sorted({s.project_id for s in servers})
    assert project_ids, 'the simulator should have instances'
    members = UserDirectory(sim_conn).members(project_ids)
    assert sorted(members) == project_ids
    for project_id, project in members.items():
        assert project.users, f'{project_id} has no member with an email'
        assert project.project_name == sim_conn.identity.get_project(
            project_id).name
        for user in project.users:
            assert '@' in user.email
            assigned = list(sim_conn.identity.role_assignments(
                user_id=user.id, scope_project_id=project_id))
            assert assigned, f'{user.name} has no role on {project_id}'
            assert sim_conn.identity.get_user(user.id).email == user.email


def test_dribbling_keystone_cannot_hang_the_lookup(tmp_path):
    """Each Keystone request ends within the API timeout, answer read in
    full, however slowly Keystone sends it (here: a byte every 0.2 s)."""
    keystone = DribblingHttp(lambda method, path: (500, None, 'fast'))

    def answer(method, path):
        if path.rstrip('/') in ('', '/v3'):
            return 200, {'version': {
                'id': 'v3.14', 'status': 'stable',
                'links': [{'rel': 'self', 'href': f'{keystone.url}/v3/'}]}}, \
                'fast'
        return 200, {'role_assignments': []}, 'dribble'

    keystone.answer = answer
    path = tmp_path / 'clouds.yaml'
    path.write_text('clouds:\n  ks:\n    auth_type: admin_token\n'
                    f'    auth:\n      endpoint: {keystone.url}/v3\n'
                    '      token: tok-not-in-errors\n')
    with keystone:
        conn = cloud.connect_to('ks', str(path), None, 1.0, '2.94')
        started = time.monotonic()
        with pytest.raises(exceptions.NotifyFailed, match='Keystone') as err:
            UserDirectory(conn).members(['p-1'])
        took = time.monotonic() - started
    assert took < 1.0 + 1.0
    assert 'within 1 s' in str(err.value)
    assert 'tok-not-in-errors' not in str(err.value)
    assert any('/role_assignments' in p for _, _, p in keystone.log)
