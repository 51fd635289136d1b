"""Who is who in the real-Nova box's real Keystone, through its API.

``CloudIdentity`` seeds the users, projects and role assignments the
simulator's seed has (``freezer_dr/simulator/seed.py``: ``admin`` with
``cloud-admin@example.org``; ``project-1`` .. with users
``<project>-user-<k>`` and their e-mail, role ``member``), adds Nova's
service user and the compute endpoint, and hands out keystoneauth sessions
per project for the box's own calls. Every call goes through openstacksdk
or keystoneauth: nothing is written to Keystone's database directly.

Servers are booted by the project's first user; booting on a chosen host
needs the ``admin`` role, which that user gets on its project.
"""

from __future__ import annotations

import secrets
import threading

import openstack
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

REGION = 'RegionOne'
DOMAIN = 'default'
ADMIN = 'admin'
ADMIN_EMAIL = 'cloud-admin@example.org'
SERVICE_PROJECT = 'service'
NOVA_USER = 'nova'


def user_name(project: str, k: int) -> str:
    return f'{project}-user-{k}'


class CloudIdentity:
    """The box's view of Keystone: seed it, and sessions per project."""

    def __init__(self, url: str, admin_password: str) -> None:
        self.url = url.rstrip('/')
        self.admin_password = admin_password
        self.nova_password = secrets.token_urlsafe(18)
        self._passwords: dict[str, str] = {ADMIN: admin_password}
        self._sessions: dict[str, ks_session.Session] = {}
        self._lock = threading.RLock()
        self._conn: openstack.connection.Connection | None = None
        self._roles: dict[str, object] = {}

    # -- connections -----------------------------------------------------
    def session(self, user: str, project: str) -> ks_session.Session:
        """A keystoneauth session of ``user`` scoped to ``project``
        (re-authenticates by itself when the token expires)."""
        auth = v3.Password(
            auth_url=self.url, username=user,
            password=self._passwords[user], user_domain_id=DOMAIN,
            project_name=project, project_domain_id=DOMAIN)
        return ks_session.Session(auth=auth)

    @property
    def admin(self) -> openstack.connection.Connection:
        """An admin openstacksdk connection (identity calls)."""
        if self._conn is None:
            self._conn = openstack.connection.Connection(
                session=self.session(ADMIN, ADMIN), region_name=REGION,
                identity_api_version='3')
        return self._conn

    def admin_session(self) -> ks_session.Session:
        return self.project_session(ADMIN)

    # -- seeding ---------------------------------------------------------
    def seed(self, projects: int = 2, users_per_project: int = 2) -> None:
        """The simulator's identity seed, plus Nova's service user."""
        ident = self.admin.identity
        admin = ident.find_user(ADMIN, domain_id=DOMAIN,
                                ignore_missing=False)
        ident.update_user(admin, email=ADMIN_EMAIL)
        admin_project = ident.find_project(ADMIN, domain_id=DOMAIN,
                                           ignore_missing=False)
        self._grant(admin_project, admin, 'member')
        service = ident.create_project(name=SERVICE_PROJECT,
                                       domain_id=DOMAIN,
                                       description='Service users')
        nova = self._user(NOVA_USER, service, email=None,
                          password=self.nova_password)
        for role in ('service', ADMIN):
            self._grant(service, nova, role)
        for p in range(1, projects + 1):
            self.add_project(f'project-{p}', users_per_project)

    def add_project(self, name: str, users: int = 1):
        """A project with ``users`` member users (with an e-mail)."""
        project = self.admin.identity.create_project(
            name=name, domain_id=DOMAIN, description=f'Project {name}')
        for k in range(1, users + 1):
            user = self._user(user_name(name, k), project,
                              email=f'{user_name(name, k)}@example.org')
            self._grant(project, user, 'member')
        return project

    def _user(self, name: str, project, email: str | None,
              password: str | None = None):
        password = password or secrets.token_urlsafe(18)
        fields = {'name': name, 'password': password, 'domain_id': DOMAIN,
                  'default_project_id': project.id}
        if email:
            fields['email'] = email
        user = self.admin.identity.create_user(**fields)
        self._passwords[name] = password
        return user

    def _grant(self, project, user, role_name: str) -> None:
        if role_name not in self._roles:
            self._roles[role_name] = self.admin.identity.find_role(
                role_name, ignore_missing=False)
        self.admin.identity.assign_project_role_to_user(
            project, user, self._roles[role_name])

    def register_compute(self, url: str) -> None:
        """The compute service and its endpoints in the catalog."""
        ident = self.admin.identity
        service = ident.create_service(name='nova', type='compute',
                                       description='Real Nova (the box)')
        for interface in ('public', 'internal', 'admin'):
            ident.create_endpoint(service_id=service.id, interface=interface,
                                  url=url, region_id=REGION)

    # -- sessions per project ---------------------------------------------
    def project_session(self, ref: str) -> ks_session.Session:
        """A session that may boot servers in project ``ref`` (name or
        id; created with one member user if unknown, as the simulator's
        control API does)."""
        with self._lock:
            if ref not in self._sessions:
                self._sessions[ref] = self._booting_session(ref)
            return self._sessions[ref]

    def _booting_session(self, ref: str) -> ks_session.Session:
        ident = self.admin.identity
        if ref == ADMIN:
            return self.session(ADMIN, ADMIN)
        project = ident.find_project(ref, domain_id=DOMAIN)
        if project is None:
            project = self.add_project(ref, users=1)
        name = user_name(project.name, 1)
        user = ident.find_user(name, domain_id=DOMAIN, ignore_missing=False)
        if name not in self._passwords:      # a user we did not create
            raise KeyError(f'no password known for {name}')
        self._grant(project, user, ADMIN)
        return self.session(name, project.name)
