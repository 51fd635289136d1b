"""The nova evacuator against the simulated cloud over real HTTP."""
from __future__ import annotations

import time

import pytest

from freezer_dr import cloud
from freezer_dr import exceptions
from freezer_dr.demo.etcd_server import free_port
from freezer_dr.engine import tracking
from freezer_dr.evacuators.nova import NovaEvacuator
from tests import nova_support as support

REASON = 'freezer-dr recovery r-123: host failed and was fenced'


def evacuator_for(handle, microversion='2.94'):
    conf = support.config_for(handle,
                              cloud={'compute_microversion': microversion,
                                     'api_timeout': 10.0})
    return NovaEvacuator.from_config(conf)


def compute_service(handle, host):
    conn = handle.connection()
    [svc] = [s for s in conn.compute.services(binary='nova-compute')
             if s.host == host]
    return svc


def failed_host(handle):
    """The first host, crashed and seen down by Nova."""
    host = handle.hosts[0]
    handle.fail(host, 'crash')
    support.wait_until(lambda: compute_service(handle, host).state == 'down',
                       handle.service_down_time * 4 + 10, f'{host} down')
    return host


def track_to_done(evacuator, record, source, timeout):
    return support.wait_until(
        lambda: (lambda now: now if tracking.classify(
            record, now, source) == 'done' else None)(
                evacuator.status(record['id'])),
        timeout, f'{record["id"]} evacuated')


def test_isolate_forces_down_before_disabling_with_the_reason(sim_cloud):
    host = sim_cloud.hosts[0]
    sim_cloud.fail(host, 'crash')        # Nova may still count it as up
    evacuator = evacuator_for(sim_cloud)
    log = support.RequestLog(evacuator._conn)
    evacuator.isolate(host, REASON)
    writes = [e['body'] for e in log.writes('os-services')]
    assert writes == [{'forced_down': True},
                      {'status': 'disabled', 'disabled_reason': REASON}]
    svc = compute_service(sim_cloud, host)
    assert svc.is_forced_down and svc.state == 'down'
    assert svc.status == 'disabled' and svc.disabled_reason == REASON
    # Idempotent: a second isolate changes nothing and sends no write.
    again = support.RequestLog(evacuator._conn)
    evacuator.isolate(host, REASON)
    assert again.writes() == []


def test_every_request_carries_the_microversion(sim_cloud):
    evacuator = evacuator_for(sim_cloud)
    log = support.RequestLog(evacuator._conn)
    evacuator.instances(sim_cloud.hosts[0])
    nova = [e for e in log.entries if '/v2.1/' in e['url']]
    assert nova and all(
        e['headers'].get('OpenStack-API-Version') == 'compute 2.94'
        for e in nova)


def test_instances_are_listed_across_projects(sim_cloud):
    host, other = sim_cloud.hosts[0], sim_cloud.hosts[1]
    first = sim_cloud.boot('web', host, project='project-1',
                           metadata={'HA_Enabled': 'true'})
    second = sim_cloud.boot('db', host, project='project-2', status='SHUTOFF')
    elsewhere = sim_cloud.boot('cache', other, project='project-1')
    found = {i.id: i for i in evacuator_for(sim_cloud).instances(host)}
    truth = {s.id for s in sim_cloud.connection().compute.servers(
        all_projects=True) if s.compute_host == host}
    assert set(found) == truth      # the cloud may hold seeded servers too
    assert {first, second} <= set(found)
    assert elsewhere not in found
    assert found[first].project_id != found[second].project_id
    assert found[first].metadata == {'HA_Enabled': 'true'}
    assert found[second].status == 'SHUTOFF'
    assert all(i.host == host and i.task_state is None
               for i in found.values())


def test_evacuate_while_source_is_up_is_refused_with_novas_message(
        sim_cloud):
    host = sim_cloud.hosts[0]
    server = sim_cloud.boot('vm', host)
    with pytest.raises(exceptions.EvacuationFailed) as err:
        evacuator_for(sim_cloud).evacuate(server)
    assert f'Compute service of {host} is still in use' in str(err.value)
    assert 'HTTP 400' in str(err.value)


@pytest.mark.parametrize('microversion', ['2.94', '2.95'])
def test_evacuate_tracks_to_done_and_restores_power_state(sim_cloud,
                                                          microversion):
    host = sim_cloud.hosts[0]
    running = sim_cloud.boot('running', host)
    stopped = sim_cloud.boot('stopped', host, status='SHUTOFF')
    evacuator = evacuator_for(sim_cloud, microversion)
    since = time.time() - 1
    failed_host(sim_cloud)
    evacuator.isolate(host, REASON)
    records = [{'id': i.id, 'original_status': i.status}
               for i in evacuator.instances(host)
               if i.id in (running, stopped)]
    assert sorted(r['original_status'] for r in records) == [
        'ACTIVE', 'SHUTOFF']
    for record in records:
        evacuator.evacuate(record['id'])
    timeout = sim_cloud.service_down_time * 4 + 30
    for record in records:
        now = track_to_done(evacuator, record, host, timeout)
        assert now.host in sim_cloud.hosts and now.host != host
        start = tracking.power_to_restore(record['original_status'], now)
        if start is not None:
            evacuator.set_power(record['id'], on=start)
        support.wait_until(
            lambda r=record: (lambda s: s.status == r['original_status']
                              and s.task_state is None)(
                evacuator.status(r['id'])),
            timeout, f'{record["id"]} back to {record["original_status"]}')
        [migration] = evacuator.evacuations(record['id'], since)
        assert migration['source_compute'] == host
        assert migration['dest_compute'] == now.host
    if microversion == '2.95':
        # From 2.95 an evacuated ACTIVE server ends SHUTOFF: it had to be
        # started again, and that is what brought it back to ACTIVE.
        assert evacuator.status(running).status == 'ACTIVE'


def test_evacuations_lists_only_migrations_after_since(sim_cloud):
    host = sim_cloud.hosts[0]
    server = sim_cloud.boot('vm', host)
    evacuator = evacuator_for(sim_cloud)
    before = time.time() - 1
    assert evacuator.evacuations(server, before) == []
    failed_host(sim_cloud)
    evacuator.isolate(host, REASON)
    evacuator.evacuate(server)
    found = evacuator.evacuations(server, before)
    assert len(found) == 1
    assert found[0]['source_compute'] == host
    assert found[0]['status'] in ('accepted', 'pre-migrating', 'running',
                                  'done')
    assert evacuator.evacuations(server, time.time() + 60) == []


def test_set_power_to_the_current_state_is_fine(sim_cloud):
    server = sim_cloud.boot('vm', sim_cloud.hosts[0])
    evacuator = evacuator_for(sim_cloud)
    evacuator.set_power(server, on=True)     # Nova answers 409: fine
    assert evacuator.status(server).status == 'ACTIVE'


def test_status_of_unknown_server_is_a_refusal(sim_cloud):
    with pytest.raises(exceptions.EvacuationFailed, match='HTTP 404'):
        evacuator_for(sim_cloud).status(
            '00000000-0000-0000-0000-000000000000')


def test_enable_clears_force_down_then_enables(sim_cloud):
    host = failed_host(sim_cloud)
    evacuator = evacuator_for(sim_cloud)
    evacuator.isolate(host, REASON)
    sim_cloud.recover(host)
    log = support.RequestLog(evacuator._conn)
    evacuator.enable(host)
    writes = [e['body'] for e in log.writes('os-services')]
    assert writes == [{'forced_down': False}, {'status': 'enabled'}]
    svc = support.wait_until(
        lambda: (lambda s: s if s.state == 'up' else None)(
            compute_service(sim_cloud, host)),
        sim_cloud.service_down_time * 4 + 10, f'{host} up again')
    assert not svc.is_forced_down and svc.status == 'enabled'


def test_unreachable_cloud_is_cloud_unavailable(tmp_path):
    with support.failing_nova(status=503) as nova:
        conn = cloud.connect_to('failing', nova.clouds_yaml(str(tmp_path)),
                                None, 5.0, '2.94')
        evacuator = NovaEvacuator(conn)
        with pytest.raises(exceptions.CloudUnavailable, match='HTTP 503'):
            evacuator.evacuate('00000000-0000-0000-0000-000000000001')
        with pytest.raises(exceptions.CloudUnavailable):
            evacuator.set_power('00000000-0000-0000-0000-000000000001',
                                on=True)
    port = free_port()
    path = tmp_path / 'dead.yaml'
    path.write_text('clouds:\n  dead:\n    auth_type: admin_token\n'
                    '    auth:\n      endpoint: '
                    f'http://127.0.0.1:{port}/v2.1\n      token: unused\n')
    evacuator = NovaEvacuator(cloud.connect_to('dead', str(path), None, 5.0,
                                               '2.94'))
    with pytest.raises(exceptions.CloudUnavailable):
        evacuator.isolate('compute-1', REASON)


SERVICE = {'id': 'c0ffee00-0000-0000-0000-000000000001',
           'binary': 'nova-compute', 'host': 'compute-1', 'zone': 'nova',
           'state': 'down', 'status': 'enabled', 'forced_down': True,
           'disabled_reason': None, 'updated_at': '2026-12-01T00:00:00'}


@pytest.mark.parametrize('failures', [2, 3])
def test_a_request_nova_fails_is_sent_again_an_evacuation_never(
        tmp_path, failures):
    """A loaded Nova API answers a request with 500 now and then. A read,
    or a write that sets a state, is sent again (0.5 s, then 1 s later)
    rather than setting back the step it serves by the runner's backoff;
    a third failure is reported. An evacuation is never sent twice."""
    left = {'read': failures, 'write': 0}

    def answer(path):
        write = 'os-services/' in path or path.endswith('/action')
        kind = 'write' if write else 'read'
        if left[kind]:
            left[kind] -= 1
            return 500, {'computeFault': {'code': 500, 'message': 'busy'}}
        if 'os-services/' in path:                          # the disable
            return 200, {'service': {**SERVICE, 'status': 'disabled'}}
        return 200, {'migrations': [], 'services': [SERVICE]}

    with support.loopback_nova(answer) as nova:
        evacuator = NovaEvacuator(cloud.connect_to(
            'failing', nova.clouds_yaml(str(tmp_path)), None, 5.0, '2.94'))
        server = '00000000-0000-0000-0000-000000000001'
        if failures == 2:
            assert evacuator.evacuations(server, since=0.0) == []
        else:
            with pytest.raises(exceptions.CloudUnavailable,
                               match='cannot list evacuations.*HTTP 500'):
                evacuator.evacuations(server, since=0.0)
        assert len([p for p in nova.paths if 'os-migrations' in p]) == 3
        left['write'] = failures
        with pytest.raises(exceptions.CloudUnavailable, match='HTTP 500'):
            evacuator.evacuate(server)
        assert len([p for p in nova.paths if p.endswith('/action')]) == 1
        del nova.paths[:]
        left['write'] = failures
        if failures == 2:
            evacuator.isolate('compute-1', REASON)
        else:
            with pytest.raises(exceptions.CloudUnavailable,
                               match='cannot disable compute-1: HTTP 500'):
                evacuator.isolate('compute-1', REASON)
        assert len([p for p in nova.paths if 'os-services/' in p]) == 3


def test_connection_with_another_microversion_is_refused(tmp_path):
    path = tmp_path / 'c.yaml'
    path.write_text('clouds:\n  c:\n    auth_type: admin_token\n'
                    '    auth:\n      endpoint: http://127.0.0.1:9/v2.1\n'
                    '      token: unused\n')
    conn = cloud.connect_to('c', str(path), None, 5.0, '2.95')
    with pytest.raises(exceptions.ConfigError, match='microversion'):
        NovaEvacuator(conn, microversion='2.94')


def test_a_stopped_server_is_evacuated_stopped_at_2_95(sim_cloud):
    """A SHUTOFF server is rebuilt stopped (microversion 2.95 for that one
    call) instead of started at 2.94 and stopped again: nothing to
    restore, and no moment where it ran."""
    host = sim_cloud.hosts[0]
    stopped = sim_cloud.boot('stopped-2', host, status='SHUTOFF')
    evacuator = evacuator_for(sim_cloud, '2.94')
    failed_host(sim_cloud)
    evacuator.isolate(host, REASON)
    evacuator.evacuate(stopped, keep_stopped=True)
    record = {'id': stopped, 'original_status': 'SHUTOFF'}
    now = track_to_done(evacuator, record, host,
                        sim_cloud.service_down_time * 4 + 30)
    assert now.host != host and now.status == 'SHUTOFF'
    assert tracking.power_to_restore('SHUTOFF', now) is None
