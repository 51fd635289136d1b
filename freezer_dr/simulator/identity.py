"""Keystone's data for the simulated cloud: projects, users, roles, tokens.

Authentication follows Keystone v3: password (user by id, or by name and
domain) or token methods, scoped to a project by id or by name and domain,
or unscoped. Tokens are random, valid for a day, kept in memory.
"""
from __future__ import annotations

import secrets
import threading
import time
import typing as t

from freezer_dr.simulator import records as rec
from freezer_dr.simulator.state import ApiError

TOKEN_TTL = 24 * 3600.0
DEFAULT_DOMAIN = {'id': 'default', 'name': 'Default'}

UNAUTHORIZED = 'The request you have made requires authentication.'


class Identity:
    """The Keystone store, with its own lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.projects: dict[str, rec.Project] = {}
        self.users: dict[str, rec.User] = {}
        self.roles: dict[str, rec.Role] = {}
        self.assignments: list[rec.Assignment] = []
        self.tokens: dict[str, rec.Token] = {}

    # -- building ------------------------------------------------------------
    def add_project(self, project: rec.Project) -> rec.Project:
        with self.lock:
            self.projects[project.id] = project
            return project

    def add_user(self, user: rec.User) -> rec.User:
        with self.lock:
            self.users[user.id] = user
            return user

    def add_role(self, role: rec.Role) -> rec.Role:
        with self.lock:
            self.roles[role.id] = role
            return role

    def grant(self, user_id: str, project_id: str, role_name: str) -> None:
        with self.lock:
            role = self.role_by_name(role_name)
            self.assignments.append(
                rec.Assignment(user_id, project_id, role.id))

    # -- lookups -------------------------------------------------------------
    def role_by_name(self, name: str) -> rec.Role:
        for role in self.roles.values():
            if role.name == name:
                return role
        raise ApiError(404, f'Could not find role: {name}.')

    def user(self, user_id: str) -> rec.User:
        try:
            return self.users[user_id]
        except KeyError:
            raise ApiError(404, f'Could not find user: {user_id}.')

    def project(self, project_id: str) -> rec.Project:
        try:
            return self.projects[project_id]
        except KeyError:
            raise ApiError(404, f'Could not find project: {project_id}.')

    def roles_of(self, user_id: str, project_id: str | None) -> list[rec.Role]:
        if project_id is None:
            return []
        return [self.roles[a.role_id] for a in self.assignments
                if a.user_id == user_id and a.project_id == project_id]

    def users_of(self, project_id: str) -> list[rec.User]:
        ids = {a.user_id for a in self.assignments
               if a.project_id == project_id}
        return [self.users[i] for i in sorted(ids)]

    # -- tokens --------------------------------------------------------------
    def _find_user(self, spec: dict[str, t.Any]) -> rec.User | None:
        if 'id' in spec:
            return self.users.get(spec['id'])
        domain = spec.get('domain') or {}
        domain_id = domain.get('id') or (
            'default' if domain.get('name') in (None, 'Default')
            else domain.get('name'))
        for user in self.users.values():
            if user.name == spec.get('name') and user.domain_id == domain_id:
                return user
        return None

    def _find_project(self, spec: dict[str, t.Any]) -> rec.Project:
        if 'id' in spec:
            project = self.projects.get(spec['id'])
        else:
            project = next((p for p in self.projects.values()
                            if p.name == spec.get('name')), None)
        if project is None:
            raise ApiError(401, UNAUTHORIZED)
        return project

    def authenticate(self, body: t.Any) -> rec.Token:
        """Issue a token for a ``POST /v3/auth/tokens`` body."""
        try:
            auth = body['auth']
            identity = auth['identity']
            methods = list(identity['methods'])
        except (KeyError, TypeError):
            raise ApiError(400, 'Expecting to find identity in auth - the '
                                'server could not comply with the request '
                                'since it is either malformed or otherwise '
                                'incorrect. The client is assumed to be in '
                                'error.')
        with self.lock:
            if 'password' in methods:
                spec = (identity.get('password') or {}).get('user') or {}
                user = self._find_user(spec)
                if user is None or not secrets.compare_digest(
                        user.password, str(spec.get('password', ''))):
                    raise ApiError(401, UNAUTHORIZED)
            elif 'token' in methods:
                old = self.validate(
                    str((identity.get('token') or {}).get('id', '')))
                if old is None:
                    raise ApiError(401, UNAUTHORIZED)
                user = self.users[old.user_id]
            else:
                raise ApiError(401, UNAUTHORIZED)
            project_id = None
            scope = auth.get('scope')
            if isinstance(scope, dict) and 'project' in scope:
                project = self._find_project(scope['project'] or {})
                if not self.roles_of(user.id, project.id):
                    raise ApiError(401, UNAUTHORIZED)
                project_id = project.id
            now = time.time()
            token = rec.Token(id='gAAAAA' + secrets.token_urlsafe(48),
                              user_id=user.id, project_id=project_id,
                              methods=methods, issued_at=now,
                              expires_at=now + TOKEN_TTL,
                              audit_id=secrets.token_urlsafe(16))
            self.tokens[token.id] = token
            return token

    def validate(self, token_id: str | None) -> rec.Token | None:
        """The live token with this id, or None."""
        if not token_id:
            return None
        token = self.tokens.get(token_id)
        if token is None or token.expires_at < time.time():
            return None
        return token

    def revoke(self, token_id: str) -> None:
        with self.lock:
            if self.tokens.pop(token_id, None) is None:
                raise ApiError(404, f'Could not find token: {token_id}.')
