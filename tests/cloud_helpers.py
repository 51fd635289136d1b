"""Small cloud helpers shared by the tiers: polling, services, host
restore, who should hear about each project."""

from collections.abc import Callable
from typing import TypeVar

import openstack
from openstack import config as os_config

from freezer_dr.cloud import parse_time
from freezer_dr.demo.cluster import wait_for

T = TypeVar('T')

COMPUTE = 'nova-compute'


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """Poll ``predicate`` (every 0.5 s: the real-Nova box is CPU-bound)
    until it returns a true value; TimeoutError naming ``what`` after
    ``timeout`` seconds."""
    return wait_for(predicate, timeout, what, interval=0.5)


def connect(cloud, **config) -> openstack.connection.Connection:
    """A connection to ``cloud`` with clouds.yaml ``config`` overrides,
    e.g. ``compute_api_version='2.94'``."""
    region = os_config.OpenStackConfig(
        config_files=[cloud.clouds_yaml]).get_one(cloud.cloud, **config)
    return openstack.connection.Connection(config=region)


def service_of(conn, host: str):
    """The nova-compute service of ``host`` (exactly one)."""
    found = [s for s in conn.compute.services()
             if s.host == host and s.binary == COMPUTE]
    assert len(found) == 1, f'{len(found)} {COMPUTE} services on {host}'
    return found[0]


def last_heartbeat(conn, host: str) -> float:
    """When the nova-compute of ``host`` last reported (Nova's view)."""
    return parse_time(service_of(conn, host).updated_at).timestamp()


def recovery_since(store, host: str, since: float):
    """The recovery record of ``host`` opened after ``since`` (live, or
    else from the history), None if there is none yet."""
    live = store.get_recovery(host)
    if live is not None and live.created_at >= since:
        return live
    return next((r for r in store.history(limit=20)
                 if r.host == host and r.created_at >= since), None)


def project_id(conn, ref: str) -> str:
    """The id of the project named (or identified by) ``ref``: Keystone
    picks ids, the simulator may use the name."""
    return conn.identity.find_project(ref, ignore_missing=False).id


def server_settled_off(conn, server_id: str, source: str):
    """The server once it is on a host other than ``source`` with no task
    state, else None."""
    server = conn.compute.get_server(server_id)
    if server.compute_host != source and not server.task_state:
        return server
    return None


def restore_host(cloud, conn, host: str) -> None:
    """Bring ``host`` back: running, not forced down, enabled, up."""
    cloud.recover(host)
    service = service_of(conn, host)
    if service.is_forced_down:
        conn.compute.update_service_forced_down(service, forced=False)
    if service.status == 'disabled':
        conn.compute.enable_service(service)
    wait_until(lambda: service_of(conn, host).state == 'up',
               cloud.service_down_time + 30, f'{host} up again')


def project_emails(conn) -> dict[str, set[str]]:
    """Who Keystone says should hear about each project: the e-mail of
    every enabled user with a role on it (ground truth for the users'
    notifications)."""
    members: dict[str, set[str]] = {}
    for project in conn.identity.projects():
        emails = set()
        for ra in conn.identity.role_assignments(
                scope_project_id=project.id, effective=True):
            user_id = (ra.user or {}).get('id')
            if user_id:
                user = conn.identity.get_user(user_id)
                if user.is_enabled is not False and user.email:
                    emails.add(user.email.lower())
        members[project.id] = emails
    return members
