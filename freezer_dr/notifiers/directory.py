"""Who to tell: the users of a project and their email, from Keystone.

A user is anyone with a role on the project (group roles expanded by
Keystone with ``effective``). Each lookup caches users for its own
duration only, so a user on several projects is fetched once per send.
Each request ends within the connection's API timeout (see
:func:`freezer_dr.cloud.bound_requests`), however slowly Keystone answers.
"""
from __future__ import annotations

import dataclasses
import typing as t

from openstack import exceptions as sdk_exceptions
from oslo_log import log as logging

from freezer_dr import cloud
from freezer_dr import exceptions

LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class DirectoryUser:
    """A Keystone user who can be mailed."""
    id: str
    name: str
    email: str


@dataclasses.dataclass(frozen=True)
class ProjectMembers:
    """A project's name and its users that have an email."""
    project_id: str
    project_name: str
    users: tuple[DirectoryUser, ...]


class UserDirectory:
    """Reads project members from Keystone through openstacksdk."""

    def __init__(self, connection: t.Any) -> None:
        self._conn = connection
        cloud.bound_requests(connection)

    def members(self, project_ids: t.Iterable[str]
                ) -> dict[str, ProjectMembers]:
        """Members of each project; NotifyFailed if Keystone fails.

        Disabled users, users without an email and users deleted
        meanwhile are left out.
        """
        cache: dict[str, DirectoryUser | None] = {}
        result = {}
        try:
            for project_id in dict.fromkeys(project_ids):
                result[project_id] = self._project(project_id, cache)
        except cloud.API_ERRORS as e:
            raise exceptions.NotifyFailed(
                f'cannot read project members from Keystone: '
                f'{type(e).__name__}: {e}')
        return result

    def _project(self, project_id: str,
                 cache: dict[str, DirectoryUser | None]) -> ProjectMembers:
        project_name = project_id
        user_ids: list[str] = []
        try:
            assignments = list(self._conn.identity.role_assignments(
                scope_project_id=project_id, include_names=True,
                effective=True))
        except sdk_exceptions.NotFoundException:
            # Keystone answers 404 for a project deleted meanwhile
            LOG.info('project %s no longer exists: no one to notify',
                     project_id)
            return ProjectMembers(project_id, project_name, ())
        for ra in assignments:
            scope_project = (ra.scope or {}).get('project') or {}
            project_name = scope_project.get('name') or project_name
            user = ra.user or {}
            if user.get('id') and user['id'] not in user_ids:
                user_ids.append(user['id'])
        users = []
        for user_id in user_ids:
            if user_id not in cache:
                cache[user_id] = self._user(user_id)
            if cache[user_id] is not None:
                users.append(cache[user_id])
        return ProjectMembers(project_id, project_name, tuple(users))

    def _user(self, user_id: str) -> DirectoryUser | None:
        try:
            user = self._conn.identity.get_user(user_id)
        except sdk_exceptions.NotFoundException:
            LOG.info('user %s has a role but no longer exists', user_id)
            return None
        if user.is_enabled is False:
            return None
        email = getattr(user, 'email', None)
        if not email:
            LOG.info('user %s (%s) has no email: not notified',
                     user.name, user_id)
            return None
        return DirectoryUser(user_id, user.name or user_id, email)
