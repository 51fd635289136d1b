"""The simulated Nova driven by openstacksdk, over real HTTP.

Each test proves one rule real Nova follows (notes/real-peers.md): service
state from heartbeats, forced_down, evacuate refused while the source is
up, the result per microversion, migrations, start/stop, pagination.
"""
from __future__ import annotations

import time

import pytest
from openstack import exceptions as os_exc

from freezer_dr.demo.cluster import wait_for

COMPUTE = 'nova-compute'


def service(conn, host):
    (svc,) = [s for s in conn.compute.services(binary=COMPUTE, host=host)]
    return svc


def isolate(conn, host):
    svc = service(conn, host)
    conn.compute.update_service_forced_down(svc, forced=True)
    conn.compute.disable_service(svc, disabled_reason='freezer-dr: test')
    return svc


def settled(conn, server_id, source):
    server = conn.compute.get_server(server_id)
    if server.compute_host != source and not server.task_state:
        return server
    return None


@pytest.fixture
def conn(sim_cloud):
    return sim_cloud.connection()


def test_services_list_every_compute_host_up(sim_cloud, conn):
    services = list(conn.compute.services(binary=COMPUTE))
    assert sorted(s.host for s in services) == sorted(sim_cloud.hosts)
    assert {s.state for s in services} == {'up'}
    assert {s.status for s in services} == {'enabled'}
    assert [s.host for s in conn.compute.services(host='compute-2')] == [
        'compute-2']


def test_crashed_host_goes_down_after_service_down_time(sim_cloud, conn):
    sim_cloud.fail('compute-1', 'crash')
    assert sim_cloud.power('compute-1') == 'on'
    wait_for(lambda: service(conn, 'compute-1').state == 'down',
             sim_cloud.service_down_time + 10, 'compute-1 down')
    assert service(conn, 'compute-2').state == 'up'


def test_forced_down_is_down_at_once_and_stays_down_on_recovery(
        sim_cloud, conn):
    svc = service(conn, 'compute-1')
    conn.compute.update_service_forced_down(svc, forced=True)
    svc = service(conn, 'compute-1')
    assert (svc.state, svc.is_forced_down) == ('down', True)
    sim_cloud.fail('compute-1', 'power')
    sim_cloud.recover('compute-1')
    assert service(conn, 'compute-1').state == 'down'
    conn.compute.update_service_forced_down(svc, forced=False)
    assert service(conn, 'compute-1').state == 'up'


def test_disable_with_reason_and_enable(conn):
    svc = service(conn, 'compute-3')
    conn.compute.disable_service(svc, disabled_reason='maintenance')
    svc = service(conn, 'compute-3')
    assert (svc.status, svc.disabled_reason) == ('disabled', 'maintenance')
    conn.compute.enable_service(svc)
    svc = service(conn, 'compute-3')
    assert (svc.status, svc.disabled_reason) == ('enabled', None)


def test_old_microversion_service_actions(sim_cloud):
    conn = sim_cloud.connection(compute_api_version='2.11')
    svc = service(conn, 'compute-2')
    assert isinstance(svc.id, int)
    conn.compute.update_service_forced_down(svc, 'compute-2', COMPUTE,
                                            forced=True)
    conn.compute.disable_service(svc, 'compute-2', COMPUTE,
                                 disabled_reason='old api')
    svc = service(conn, 'compute-2')
    assert (svc.state, svc.status, svc.is_forced_down,
            svc.disabled_reason) == ('down', 'disabled', True, 'old api')


def test_evacuate_refused_while_source_service_is_up(sim_cloud, conn):
    server_id = sim_cloud.boot('busy', 'compute-1')
    with pytest.raises(os_exc.BadRequestException,
                       match='Compute service of compute-1 is still in use'):
        conn.compute.evacuate_server(server_id)
    # disabling is not enough, as in Nova
    conn.compute.disable_service(service(conn, 'compute-1'),
                                 disabled_reason='x')
    with pytest.raises(os_exc.BadRequestException):
        conn.compute.evacuate_server(server_id)


@pytest.mark.parametrize('version,expected', [('2.94', 'ACTIVE'),
                                              ('2.95', 'SHUTOFF')])
def test_evacuated_active_server_state_depends_on_microversion(
        sim_cloud, version, expected):
    conn = sim_cloud.connection(compute_api_version=version)
    server_id = sim_cloud.boot('ha-vm', 'compute-1',
                               metadata={'HA_Enabled': 'true'})
    sim_cloud.fail('compute-1', 'power')
    isolate(conn, 'compute-1')
    conn.compute.evacuate_server(server_id)
    during = conn.compute.get_server(server_id)
    assert during.task_state == 'rebuilding'
    assert during.status == 'REBUILD'
    server = wait_for(lambda: settled(conn, server_id, 'compute-1'), 15,
                      'evacuation')
    assert server.status == expected
    assert server.compute_host in ('compute-2', 'compute-3')
    assert server.metadata == {'HA_Enabled': 'true'}
    (mig,) = [m for m in conn.compute.migrations()
              if m.server_id == server_id]
    assert (mig.status, mig.migration_type, mig.source_compute,
            mig.dest_compute) == ('done', 'evacuation', 'compute-1',
                                  server.compute_host)


def test_shutoff_and_error_servers_evacuate_too(sim_cloud, conn):
    off = sim_cloud.boot('off', 'compute-2', status='SHUTOFF')
    err = sim_cloud.boot('err', 'compute-2', status='ERROR')
    sim_cloud.fail('compute-2', 'crash')
    isolate(conn, 'compute-2')
    for server_id in (off, err):
        conn.compute.evacuate_server(server_id, host='compute-3')
    assert wait_for(lambda: settled(conn, off, 'compute-2'), 15,
                    'off').status == 'SHUTOFF'
    # an ERROR server is rebuilt ACTIVE whatever the microversion
    assert wait_for(lambda: settled(conn, err, 'compute-2'), 15,
                    'err').status == 'ACTIVE'


def test_evacuate_errors(sim_cloud, conn):
    server_id = sim_cloud.boot('vm', 'compute-1')
    with pytest.raises(os_exc.NotFoundException,
                       match='Compute host nowhere not found'):
        conn.compute.evacuate_server(server_id, host='nowhere')
    with pytest.raises(os_exc.BadRequestException,
                       match="target host can't be the same"):
        conn.compute.evacuate_server(server_id, host='compute-1')
    sim_cloud.fail('compute-1', 'power')
    isolate(conn, 'compute-1')
    conn.compute.evacuate_server(server_id)
    with pytest.raises(os_exc.ConflictException,
                       match='task_state rebuilding'):
        conn.compute.evacuate_server(server_id)
    with pytest.raises(os_exc.NotFoundException):
        conn.compute.evacuate_server('00000000-0000-4000-8000-000000000000')


def test_evacuate_with_no_valid_host_ends_in_error(sim_cloud, conn):
    server_id = sim_cloud.boot('lonely', 'compute-1')
    for host in sim_cloud.hosts:
        sim_cloud.fail(host, 'crash')
        isolate(conn, host)
    conn.compute.evacuate_server(server_id)
    server = wait_for(
        lambda: (lambda s: s if not s.task_state else None)(
            conn.compute.get_server(server_id)), 10, 'no valid host')
    assert (server.status, server.compute_host) == ('ERROR', 'compute-1')
    (mig,) = [m for m in conn.compute.migrations(instance_uuid=server_id)]
    assert mig.status == 'error'


def test_injected_rebuild_failure(sim_cloud, conn):
    sim_cloud.inject(evacuate_failure_rate=1.0)
    server_id = sim_cloud.boot('doomed', 'compute-1')
    sim_cloud.fail('compute-1', 'crash')
    isolate(conn, 'compute-1')
    conn.compute.evacuate_server(server_id)
    server = wait_for(
        lambda: (lambda s: s if not s.task_state else None)(
            conn.compute.get_server(server_id)), 10, 'failed rebuild')
    assert (server.status, server.compute_host) == ('ERROR', 'compute-1')
    assert [m.status for m in conn.compute.migrations(
        instance_uuid=server_id)] == ['failed']


def test_recovered_source_completes_done_evacuations(sim_cloud, conn):
    server_id = sim_cloud.boot('mover', 'compute-1')
    sim_cloud.fail('compute-1', 'power')
    svc = isolate(conn, 'compute-1')
    conn.compute.evacuate_server(server_id)
    wait_for(lambda: settled(conn, server_id, 'compute-1'), 15, 'moved')
    with pytest.raises(os_exc.BadRequestException, match='`done`'):
        conn.compute.update_service_forced_down(svc, forced=False)
    sim_cloud.recover('compute-1')
    assert [m.status for m in conn.compute.migrations(
        instance_uuid=server_id)] == ['completed']
    conn.compute.update_service_forced_down(svc, forced=False)
    assert service(conn, 'compute-1').state == 'up'


def test_power_loss_stops_guests_left_on_the_host(sim_cloud, conn):
    server_id = sim_cloud.boot('left', 'compute-3')
    sim_cloud.fail('compute-3', 'power')
    assert conn.compute.get_server(server_id).status == 'ACTIVE'  # stale
    sim_cloud.recover('compute-3')
    assert conn.compute.get_server(server_id).status == 'SHUTOFF'


def test_start_and_stop(sim_cloud, conn):
    server_id = sim_cloud.boot('toggle', 'compute-2', status='SHUTOFF')
    with pytest.raises(os_exc.ConflictException, match='vm_state stopped'):
        conn.compute.stop_server(server_id)
    conn.compute.start_server(server_id)
    wait_for(lambda: conn.compute.get_server(server_id).status == 'ACTIVE',
             10, 'started')
    with pytest.raises(os_exc.ConflictException, match='vm_state active'):
        conn.compute.start_server(server_id)
    conn.compute.stop_server(server_id)
    wait_for(lambda: conn.compute.get_server(server_id).status == 'SHUTOFF',
             10, 'stopped')


def test_servers_detail_filters_and_fields(sim_cloud, conn):
    on_1 = list(conn.compute.servers(all_projects=True,
                                     compute_host='compute-1'))
    assert on_1 and {s.compute_host for s in on_1} == {'compute-1'}
    every = list(conn.compute.servers(all_projects=True))
    assert len(every) == 6
    assert {s.project_id for s in every} == {
        s.project_id for s in every if s.project_id}
    assert len({s.project_id for s in every}) == 2
    assert any(s.metadata.get('HA_Enabled') == 'true' for s in every)
    first = every[0]
    assert first.vm_state and first.power_state in (1, 4)
    assert first.hypervisor_hostname == first.compute_host
    shutoff = list(conn.compute.servers(all_projects=True,
                                        status='SHUTOFF'))
    assert {s.status for s in shutoff} <= {'SHUTOFF'}
    # admin without all_projects sees only the admin project's servers
    assert list(conn.compute.servers()) == []


def test_servers_paginate_like_nova(sim_cloud_factory):
    cloud = sim_cloud_factory(hosts=2, instances=1100, bmcs=False)
    conn = cloud.connection()
    ids = [s.id for s in conn.compute.servers(all_projects=True)]
    assert len(ids) == len(set(ids)) == 1100
    page = conn.compute.get('/servers?all_tenants=1&limit=5').json()
    assert len(page['servers']) == 5
    assert page['servers_links'][0]['rel'] == 'next'


def test_hypervisors_and_their_servers(sim_cloud, conn):
    hypervisors = {h.name: h for h in conn.compute.hypervisors(
        details=True, with_servers=True)}
    assert sorted(hypervisors) == sorted(sim_cloud.hosts)
    assert {h.state for h in hypervisors.values()} == {'up'}
    assert sum(len(h.servers or []) for h in hypervisors.values()) == 6
    old = sim_cloud.connection(compute_api_version='2.52')
    body = old.compute.get('/os-hypervisors/compute-1/servers').json()
    assert body['hypervisors'][0]['hypervisor_hostname'] == 'compute-1'
    assert len(body['hypervisors'][0]['servers']) == 2


def test_hypervisors_and_migrations_paginate_like_nova(sim_cloud, conn):
    page = conn.compute.get('/os-hypervisors/detail?limit=2',
                            microversion='2.53').json()
    assert len(page['hypervisors']) == 2
    follow = page['hypervisors_links'][0]['href']
    rest = conn.compute.get(follow, microversion='2.53').json()
    assert len(rest['hypervisors']) == 1
    ids = [h['id'] for h in page['hypervisors'] + rest['hypervisors']]
    assert len(set(ids)) == 3
    servers = list(conn.compute.servers(all_projects=True,
                                        compute_host='compute-1'))
    sim_cloud.fail('compute-1', 'power')
    isolate(conn, 'compute-1')
    for server in servers:
        conn.compute.evacuate_server(server)
    migs = conn.compute.get('/os-migrations?limit=1',
                            microversion='2.59').json()
    assert len(migs['migrations']) == 1
    assert 'marker=' in migs['migrations_links'][0]['href']
    assert len(list(conn.compute.migrations())) == len(servers)


def test_server_show_has_server_groups_from_2_71(sim_cloud):
    server_id = sim_cloud.boot('grouped', 'compute-1')
    new = sim_cloud.connection().compute.get(f'/servers/{server_id}',
                                             microversion='2.71').json()
    assert new['server']['server_groups'] == []
    old = sim_cloud.connection().compute.get(f'/servers/{server_id}',
                                             microversion='2.70').json()
    assert 'server_groups' not in old['server']


def test_partition_heals_without_a_compute_restart(sim_cloud, conn):
    server_id = sim_cloud.boot('split', 'compute-2')
    sim_cloud.fail('compute-2', 'partition')
    assert sim_cloud.power('compute-2') == 'on'
    svc = isolate(conn, 'compute-2')
    conn.compute.evacuate_server(server_id)
    wait_for(lambda: settled(conn, server_id, 'compute-2'), 15, 'moved')
    sim_cloud.recover('compute-2')
    # nova-compute never restarted: the evacuation is not cleaned up yet
    assert [m.status for m in conn.compute.migrations(
        instance_uuid=server_id)] == ['done']
    with pytest.raises(os_exc.BadRequestException, match='`done`'):
        conn.compute.update_service_forced_down(svc, forced=False)


def test_changes_since_filters_servers_and_migrations(sim_cloud, conn):
    time.sleep(1.1)            # timestamps have whole seconds, as in Nova
    server_id = sim_cloud.boot('recent', 'compute-1')
    mark = conn.compute.get_server(server_id).updated_at
    recent = conn.compute.get(
        f'/servers/detail?all_tenants=1&changes-since={mark}').json()
    assert [s['id'] for s in recent['servers']] == [server_id]
    sim_cloud.fail('compute-1', 'power')
    isolate(conn, 'compute-1')
    conn.compute.evacuate_server(server_id)
    # a fresh 'accepted' migration has no updated_at: not listed, as Nova
    fresh = conn.compute.get(f'/os-migrations?changes-since={mark}',
                             microversion='2.59').json()['migrations']
    assert [m['status'] for m in fresh] in ([], ['pre-migrating'])
    wait_for(lambda: settled(conn, server_id, 'compute-1'), 15, 'moved')
    later = conn.compute.get(f'/os-migrations?changes-since={mark}',
                             microversion='2.59').json()['migrations']
    assert [m['status'] for m in later] == ['done']
    bad = conn.compute.get('/servers/detail?changes-since=yesterday')
    assert bad.status_code == 400
