"""Contract: the users and e-mail addresses the notifiers read, on both
clouds (the simulator's Keystone and real Keystone 30)."""

import uuid

import openstack.exceptions as os_exc
import pytest

from freezer_dr.notifiers.directory import UserDirectory
from tests import cloud_helpers as helpers


def test_project_members_are_users_with_a_role_and_an_email(cloud, conn):
    tag = uuid.uuid4().hex[:6]
    projects = [f'dir-{tag}-a', f'dir-{tag}-b']
    for project in projects:
        cloud.boot(f'dir-{tag}', cloud.hosts[0], project=project)
    ids = {helpers.project_id(conn, p): p for p in projects}
    members = UserDirectory(conn).members(list(ids))
    assert sorted(members) == sorted(ids)
    for project_id, found in members.items():
        assert found.project_name == ids[project_id]
        assert [u.name for u in found.users] == [
            f'{ids[project_id]}-user-1']
        user = found.users[0]
        assert user.email == f'{user.name}@example.org'
        assert conn.identity.get_user(user.id).email == user.email
        assert list(conn.identity.role_assignments(
            user_id=user.id, scope_project_id=project_id))


def test_seeded_projects_have_two_users_and_the_admin_an_email(cloud, conn):
    project = conn.identity.find_project('project-1', ignore_missing=False)
    found = UserDirectory(conn).members([project.id])[project.id]
    assert sorted(u.email for u in found.users) == [
        'project-1-user-1@example.org', 'project-1-user-2@example.org']
    admin = conn.identity.find_user('admin', ignore_missing=False)
    assert admin.email == 'cloud-admin@example.org'


def test_unknown_project_has_no_members(cloud, conn):
    missing = uuid.uuid4().hex
    found = UserDirectory(conn).members([missing])[missing]
    assert (found.project_name, found.users) == (missing, ())


def test_effective_assignments_of_an_unknown_project_are_404(conn):
    # Keystone expands inherited roles from the project: it must exist.
    with pytest.raises(os_exc.NotFoundException, match='Could not find'):
        list(conn.identity.role_assignments(
            scope_project_id=uuid.uuid4().hex, include_names=True,
            effective=True))
