"""Contract: servers of a host, evacuation rules and results, restart."""

import time
import uuid

import openstack.exceptions as os_exc
import pytest

from freezer_dr import cloud as cloud_module
from tests import cloud_helpers as helpers

EVACUATION_TIMEOUT = 120


def isolate(cloud, conn, host: str) -> None:
    """What freezer-dr does before evacuating: host dead, forced down,
    disabled."""
    cloud.fail(host, 'crash')
    service = helpers.service_of(conn, host)
    conn.compute.update_service_forced_down(service, forced=True)
    conn.compute.disable_service(service, disabled_reason='contract test')


def unique(prefix: str) -> str:
    return f'{prefix}-{uuid.uuid4().hex[:6]}'


def test_servers_of_a_host_across_all_projects(cloud, conn):
    host = cloud.hosts[0]
    ids = {cloud.boot(unique('p1vm'), host, project='project-one'):
           'project-one',
           cloud.boot(unique('p2vm'), host, project='project-two',
                      status='SHUTOFF'): 'project-two'}
    listed = {s.id: s for s in conn.compute.servers(
        all_projects=True, compute_host=host)}
    assert set(ids) <= set(listed)
    assert all(s.compute_host == host for s in listed.values())
    for server_id, project in ids.items():
        assert listed[server_id].project_id == helpers.project_id(conn,
                                                                  project)
    assert listed[next(iter(ids))].status == 'ACTIVE'
    other = cloud.hosts[1]
    assert not set(ids) & {s.id for s in conn.compute.servers(
        all_projects=True, compute_host=other)}


def test_evacuate_while_source_service_is_up_is_refused(cloud, conn, victim):
    server_id = cloud.boot(unique('busy'), victim)
    with pytest.raises(os_exc.BadRequestException) as err:
        conn.compute.evacuate_server(server_id)
    assert f'Compute service of {victim} is still in use.' in str(err.value)
    # Disabling alone does not allow it either.
    conn.compute.disable_service(helpers.service_of(conn, victim),
                                 disabled_reason='contract test')
    with pytest.raises(os_exc.BadRequestException):
        conn.compute.evacuate_server(server_id)
    server = conn.compute.get_server(server_id)
    assert (server.compute_host, server.status) == (victim, 'ACTIVE')


@pytest.mark.parametrize('microversion, was, ends', [
    ('2.94', 'ACTIVE', 'ACTIVE'),
    ('2.95', 'ACTIVE', 'SHUTOFF'),
    ('2.94', 'SHUTOFF', 'SHUTOFF'),
    ('2.95', 'SHUTOFF', 'SHUTOFF'),
    ('2.94', 'ERROR', 'ACTIVE'),
    ('2.95', 'ERROR', 'ACTIVE'),
])
def test_evacuation_moves_the_server_and_records_one_migration(
        cloud, conn, victim, microversion, was, ends):
    server_id = cloud.boot(unique('evac'), victim, status=was)
    isolate(cloud, conn, victim)
    pinned = helpers.connect(cloud, compute_api_version=microversion)
    requested = time.time()
    pinned.compute.evacuate_server(server_id)
    server = helpers.wait_until(
        lambda: helpers.server_settled_off(conn, server_id, victim),
        EVACUATION_TIMEOUT, f'{server_id} evacuated off {victim}')
    assert server.compute_host in cloud.hosts
    assert server.status == ends
    migrations = helpers.wait_until(
        lambda: [m for m in conn.compute.migrations(server_id=server_id)
                 if m.status in ('done', 'completed')],
        30, f'evacuation migration of {server_id} done')
    assert len(list(conn.compute.migrations(server_id=server_id))) == 1
    migration = migrations[0]
    assert migration.migration_type == 'evacuation'
    assert (migration.source_compute, migration.dest_compute) == (
        victim, server.compute_host)
    assert migration.server_id == server_id
    assert migration.uuid
    # Nova's naive UTC timestamp, from the same clock as ours.
    created = cloud_module.parse_time(migration.created_at)
    assert abs(created.timestamp() - requested) < 5, migration.created_at
    assert [m.id for m in conn.compute.migrations(
        server_id=server_id, migration_type='evacuation')] == [migration.id]
    assert not list(conn.compute.migrations(
        server_id=server_id, migration_type='live-migration'))


def test_start_and_stop_in_the_wrong_state_are_409(cloud, conn):
    host = cloud.hosts[0]
    active = cloud.boot(unique('on'), host)
    stopped = cloud.boot(unique('off'), host, status='SHUTOFF')
    with pytest.raises(os_exc.ConflictException) as err:
        conn.compute.start_server(active)
    assert (f"Cannot 'start' instance {active} while it is in vm_state "
            f"active" in str(err.value))
    with pytest.raises(os_exc.ConflictException) as err:
        conn.compute.stop_server(stopped)
    assert (f"Cannot 'stop' instance {stopped} while it is in vm_state "
            f"stopped" in str(err.value))
    conn.compute.start_server(stopped)
    helpers.wait_until(
        lambda: conn.compute.get_server(stopped).status == 'ACTIVE',
        60, f'{stopped} started')


def test_failed_host_restarted_while_forced_down_stays_down_and_cleans_up(
        cloud, conn, victim):
    server_id = cloud.boot(unique('cleanup'), victim)
    isolate(cloud, conn, victim)
    conn.compute.evacuate_server(server_id)
    helpers.wait_until(
        lambda: helpers.server_settled_off(conn, server_id, victim),
        EVACUATION_TIMEOUT, f'{server_id} evacuated off {victim}')
    cloud.recover(victim)
    # Nova marks the evacuation 'completed' once the returning source host
    # has destroyed its local copy of the guest.
    helpers.wait_until(
        lambda: [m for m in conn.compute.migrations(server_id=server_id)
                 if m.status == 'completed'],
        60, f'{victim} cleaned up the evacuated guest of {server_id}')
    assert not [s for s in conn.compute.servers(
        all_projects=True, compute_host=victim) if s.id == server_id]
    service = helpers.service_of(conn, victim)
    assert (service.state, service.is_forced_down) == ('down', True)
    assert cloud.power(victim) == 'on'
