"""Every Nova write ends by one deadline, re-authentication included, and
its guard runs right before the write goes on the wire (S2).

Ground truth is the server side: the simulator's migrations (an evacuate
that reached Nova leaves one) and the loopback peer's request log.
"""
from __future__ import annotations

import datetime
import time

import pytest
import requests

from freezer_dr import cloud
from freezer_dr import exceptions
from freezer_dr.evacuators.nova import NovaEvacuator
from tests import nova_support as support
from tests.fixtures.dribble import DribblingHttp
from tests.functional.test_nova_evacuator import REASON
from tests.functional.test_nova_evacuator import failed_host

SERVER = '00000000-0000-0000-0000-0000000000aa'
TIMEOUT = 1.5
#: scheduling slack on a loaded 2-core machine; the peers below keep a
#: call alive for 10+ s without a deadline
SLACK = 1.0


# -- a slow Keystone when the write needs a re-authentication -------------

def _evacuator(handle, timeout):
    conf = support.config_for(handle, cloud={'api_timeout': timeout})
    return NovaEvacuator.from_config(conf)


def _isolated_server(handle):
    """A server on a failed, isolated host, and an evacuator that has
    authenticated and discovered Nova already."""
    host = handle.hosts[0]
    server = handle.boot('vm', host)
    failed_host(handle)
    evacuator = _evacuator(handle, TIMEOUT)
    evacuator.isolate(host, REASON)
    return evacuator, server


def _evacuations(handle, server):
    """Ground truth: the evacuation migrations Nova recorded."""
    handle.inject(latency={'keystone': 0, 'nova': 0})
    conn = handle.connection()
    return [m for m in conn.compute.migrations(
        server_id=server, migration_type='evacuation')
        if m.server_id == server]


def _created(migration) -> float:
    return datetime.datetime.fromisoformat(migration.created_at).replace(
        tzinfo=datetime.timezone.utc).timestamp()


def _revoke_token(evacuator) -> None:
    """Revoke the evacuator's token in Keystone: its next Nova call gets
    401 and keystoneauth re-authenticates, then resends the write."""
    session = evacuator._conn.session
    token = session.get_token()
    auth_url = evacuator._conn.config.config['auth']['auth_url']
    resp = requests.delete(f'{auth_url}/auth/tokens', timeout=10, headers={
        'X-Auth-Token': token, 'X-Subject-Token': token})
    assert resp.status_code == 204


def test_write_resent_after_a_slow_reauth_never_reaches_nova_late(
        sim_cloud):
    evacuator, server = _isolated_server(sim_cloud)
    _revoke_token(evacuator)
    # 401 after 0.5 s, a new token after 1.2 s more: without one deadline
    # the evacuate is resent at ~1.7 s and lands at ~2.2 s, long after
    # the 1.5 s the guard checked.
    sim_cloud.inject(latency={'keystone': 1.2, 'nova': 0.5})
    guards: list[float] = []
    started, wall = time.monotonic(), time.time()
    try:
        evacuator.evacuate(server, guard=lambda: guards.append(time.time()))
        outcome = 'accepted'
    except exceptions.CloudUnavailable as error:
        outcome = str(error)
    took = time.monotonic() - started
    time.sleep(2.0)            # anything still in flight would land now
    landed = [_created(m) - wall for m in _evacuations(sim_cloud, server)]
    assert landed == []        # the only POST that reached Nova got 401
    assert took < TIMEOUT + SLACK
    assert guards and all(g < wall + TIMEOUT for g in guards)
    assert f'within {TIMEOUT:g} s' in outcome


def test_guard_runs_after_the_reauthentication_right_before_the_write(
        sim_cloud):
    evacuator, server = _isolated_server(sim_cloud)
    evacuator.api_timeout = 4.0
    # The token is about to expire: keystoneauth drops it and
    # re-authenticates on the next call, as it does by itself then.
    evacuator._conn.session.auth.invalidate()
    sim_cloud.inject(latency={'keystone': 0.8})
    guards: list[float] = []
    wall = time.time()
    evacuator.evacuate(server, guard=lambda: guards.append(time.time()))
    assert len(guards) == 1
    assert guards[0] >= wall + 0.8         # after Keystone answered
    [migration] = _evacuations(sim_cloud, server)
    assert guards[0] <= _created(migration) <= guards[0] + 4.0


def test_slow_keystone_abandons_the_write_unsent(sim_cloud):
    evacuator, server = _isolated_server(sim_cloud)
    evacuator._conn.session.auth.invalidate()
    sim_cloud.inject(latency={'keystone': 3.0})
    guards: list[float] = []
    started = time.monotonic()
    with pytest.raises(exceptions.CloudUnavailable) as err:
        evacuator.evacuate(server, guard=lambda: guards.append(time.time()))
    assert time.monotonic() - started < TIMEOUT + SLACK
    assert guards == []                 # nothing was about to be sent
    assert 'abandoned unsent' in str(err.value)
    time.sleep(2.0)
    assert _evacuations(sim_cloud, server) == []


# -- a Nova that dribbles its answers ---------------------------------------

def _slow_nova(slow: str, mode: str = 'dribble') -> DribblingHttp:
    """A loopback Nova: version document and service list at once;
    requests of kind ``slow`` ('write' or 'read') answered in ``mode``."""
    nova = DribblingHttp(lambda method, path: (500, None, 'fast'))

    def answer(method: str, path: str):
        if path.rstrip('/') in ('', '/v2.1'):
            return 200, {'version': {
                'id': 'v2.1', 'status': 'CURRENT', 'version': '2.100',
                'min_version': '2.1', 'updated': '2013-07-23T11:33:21Z',
                'links': [{'rel': 'self', 'href': f'{nova.url}/v2.1/'}]}}, \
                'fast'
        write = method not in ('GET', 'HEAD')
        if path.startswith('/v2.1/os-services') and not write:
            return 200, {'services': [{
                'id': 'svc-1', 'binary': 'nova-compute',
                'host': 'compute-1', 'zone': 'nova', 'status': 'enabled',
                'state': 'down', 'forced_down': False,
                'disabled_reason': None,
                'updated_at': '2026-01-01T00:00:00.000000'}]}, 'fast'
        if write != (slow == 'write'):
            return 200, {}, 'fast'
        if path.startswith('/v2.1/os-migrations'):
            return 200, {'migrations': []}, mode
        if path.startswith('/v2.1/servers/detail'):
            return 200, {'servers': []}, mode
        return 200, {'server': {'id': SERVER, 'status': 'ACTIVE'}}, mode
    nova.answer = answer
    return nova


def _evacuator_for(nova: DribblingHttp, tmp_path) -> NovaEvacuator:
    path = tmp_path / 'clouds.yaml'
    path.write_text('clouds:\n  slow:\n    auth_type: admin_token\n'
                    '    auth:\n      endpoint: '
                    f'{nova.url}/v2.1\n      token: unused\n')
    return NovaEvacuator(cloud.connect_to('slow', str(path), None, TIMEOUT,
                                          '2.94'))


WRITES = {
    'evacuate': lambda ev, guard: ev.evacuate(SERVER, guard=guard),
    'start': lambda ev, guard: ev.set_power(SERVER, True, guard=guard),
    'force-down': lambda ev, guard: ev.isolate('compute-1', REASON, guard),
}


@pytest.mark.parametrize('mode', ['dribble', 'silent'])
@pytest.mark.parametrize('write', sorted(WRITES))
def test_a_slow_nova_ends_the_write_by_its_deadline(tmp_path, write, mode):
    with _slow_nova('write', mode) as nova:
        evacuator = _evacuator_for(nova, tmp_path)
        guards: list[float] = []
        started, wall = time.monotonic(), time.time()
        with pytest.raises(exceptions.CloudUnavailable) as err:
            WRITES[write](evacuator, lambda: guards.append(time.time()))
        took = time.monotonic() - started
    assert took < TIMEOUT + SLACK
    writes = [entry for entry in nova.log if entry[1] in ('POST', 'PUT')]
    assert len(writes) == 1 and len(guards) == 1
    assert guards[0] <= writes[0][0] < wall + TIMEOUT
    assert 'the write was sent, its outcome is unknown' in str(err.value)


READS = {
    'status': lambda ev: ev.status(SERVER),
    'instances': lambda ev: ev.instances('compute-1'),
    'evacuations': lambda ev: ev.evacuations(SERVER, 0.0),
}


@pytest.mark.parametrize('read', sorted(READS))
def test_a_dribbling_nova_cannot_hang_a_read(tmp_path, read):
    with _slow_nova('read') as nova:
        evacuator = _evacuator_for(nova, tmp_path)
        started = time.monotonic()
        with pytest.raises(exceptions.CloudUnavailable) as err:
            READS[read](evacuator)
        took = time.monotonic() - started
    assert took < TIMEOUT + SLACK
    assert f'within {TIMEOUT:g} s' in str(err.value)


def test_guard_refusal_stops_the_write_before_the_wire(tmp_path):
    with _slow_nova('write', 'fast') as nova:
        evacuator = _evacuator_for(nova, tmp_path)

        def deposed() -> None:
            raise exceptions.LeadershipLost('lease gone')

        with pytest.raises(exceptions.LeadershipLost):
            evacuator.evacuate(SERVER, guard=deposed)
        assert [e for e in nova.log if e[1] == 'POST'] == []
        evacuator.evacuate(SERVER, guard=lambda: None)   # connection fine
        assert [e[2] for e in nova.log if e[1] == 'POST'] == [
            f'/v2.1/servers/{SERVER}/action']
