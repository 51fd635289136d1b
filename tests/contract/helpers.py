"""Small helpers of the contract suite: polling, services, host restore."""

import time
from collections.abc import Callable
from typing import TypeVar

import openstack
from openstack import config as os_config

T = TypeVar('T')

COMPUTE = 'nova-compute'


def wait_until(predicate: Callable[[], T], timeout: float, what: str,
               interval: float = 0.5) -> T:
    """Poll ``predicate`` until it returns a true value; fail after
    ``timeout`` seconds naming ``what`` was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f'timed out after {timeout} s waiting for '
                                 f'{what}')
        time.sleep(interval)


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
