"""Populate a fresh simulated cloud: identity, hosts, servers.

Hosts are ``compute-1`` .. ``compute-N``, spread round-robin over
``cells`` cells (``cell1`` ..); projects ``project-1`` ..; each
project has users ``<project>-user-<k>`` with an email and the ``member``
role; ``admin`` has the ``admin`` role on the ``admin`` project. Servers
are spread round-robin over hosts and projects; one in ten is SHUTOFF and
one in three carries metadata ``HA_Enabled=true`` (and the ``ha-enabled``
tag).
"""
from __future__ import annotations

import dataclasses
import secrets

from freezer_dr.simulator import actions
from freezer_dr.simulator import records as rec
from freezer_dr.simulator.identity import Identity
from freezer_dr.simulator.state import Compute


@dataclasses.dataclass
class Shape:
    """How big the cloud is."""
    hosts: int = 3
    instances: int = 6
    projects: int = 2
    users_per_project: int = 2
    cells: int = 1


def host_name(i: int) -> str:
    return f'compute-{i}'


def cell_name(i: int, cells: int) -> str:
    """The cell of host ``i`` (1-based): round-robin over ``cells``."""
    return f'cell{(i - 1) % max(cells, 1) + 1}'


def add_project(compute: Compute, identity: Identity, project_id: str,
                name: str, users: int) -> rec.Project:
    """A project with ``users`` member users ``<name>-user-<k>``."""
    with identity.lock:
        project = identity.add_project(rec.Project(project_id, name))
        for u in range(1, users + 1):
            user_name = f'{name}-user-{u}'
            user = identity.add_user(rec.User(
                compute.new_uuid().replace('-', ''), user_name,
                secrets.token_urlsafe(12), f'{user_name}@example.org',
                project.id))
            identity.grant(user.id, project.id, 'member')
        return project


def populate(compute: Compute, identity: Identity, shape: Shape,
             admin_password: str | None = None) -> rec.User:
    """Fill ``compute`` and ``identity``; returns the admin user."""
    new_id = compute.new_uuid
    for name in ('admin', 'member', 'reader'):
        identity.add_role(rec.Role(new_id().replace('-', ''), name))
    admin_project = identity.add_project(
        rec.Project(new_id().replace('-', ''), 'admin',
                    description='Cloud administrators'))
    admin = identity.add_user(rec.User(
        new_id().replace('-', ''), 'admin',
        admin_password or secrets.token_urlsafe(18),
        'cloud-admin@example.org', admin_project.id))
    identity.grant(admin.id, admin_project.id, 'admin')
    identity.grant(admin.id, admin_project.id, 'member')
    members: list[tuple[str, list[str]]] = []
    for p in range(1, shape.projects + 1):
        project = add_project(compute, identity,
                              new_id().replace('-', ''), f'project-{p}',
                              shape.users_per_project)
        members.append((project.id, [u.id for u in
                                     identity.users_of(project.id)]))

    compute.cells = [cell_name(i, shape.cells)
                     for i in range(1, max(shape.cells, 1) + 1)]
    for binary in ('nova-scheduler', 'nova-conductor'):
        compute.add_service(binary, 'controller')
    for i in range(1, shape.hosts + 1):
        compute.add_host(host_name(i), cell_name(i, shape.cells))

    hosts = list(compute.hosts)
    for n in range(shape.instances):
        if not hosts or not members:
            break
        project_id, user_ids = members[n % len(members)]
        marked = n % 3 == 0
        actions.boot(
            compute, f'vm-{n + 1}', hosts[n % len(hosts)], project_id,
            user_ids[n % len(user_ids)] if user_ids else admin.id,
            status='SHUTOFF' if n % 10 == 9 else 'ACTIVE',
            metadata={'HA_Enabled': 'true'} if marked else {},
            tags=['ha-enabled'] if marked else [])
    return admin
