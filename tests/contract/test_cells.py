"""Contract: a cell Nova cannot reach, listed the same on both clouds.

Real Nova makes the cell unreachable with its own ``DownCellFixture``
(``tests/novabox/box.py``); the simulator has the ``down-cell`` fault
(``freezer_dr/simulator/nova_cells.py``). Both clouds here run 4 hosts in
2 cells: compute-1, -3 in cell1; compute-2, -4 in cell2.
"""

import uuid

import pytest
import requests

from freezer_dr import cloud as cloud_module
from freezer_dr.monitors.nova import NovaMonitor
from tests import cloud_helpers as helpers

DOWN, UP = 'cell2', 'cell1'
PARTIAL_IN_LIST = {'id', 'status', 'tenant_id', 'created', 'links'}
PARTIAL_SHOW = PARTIAL_IN_LIST | {
    'image', 'flavor', 'OS-EXT-AZ:availability_zone',
    'OS-EXT-STS:power_state', 'user_id', 'server_groups'}
DB_ERROR = "<class 'oslo_db.exception.DBError'>"
NOVA_ERROR = "<class 'nova.exception.NovaException'>"


@pytest.fixture(params=['sim', 'realnova'])
def cells_cloud(request):
    """A cloud of 4 hosts in 2 cells (the simulator with ``--cells 2``,
    or the real-Nova box)."""
    if request.param == 'sim':
        factory = request.getfixturevalue('sim_cloud_factory')
        return factory(hosts=4, instances=0, bmcs=False,
                       extra_args=['--cells', '2'])
    return request.getfixturevalue('realnova_cloud')


@pytest.fixture
def down_cell(cells_cloud):
    """Servers on a host of each cell, then cell2 unreachable (until the
    end of the test)."""
    tag = uuid.uuid4().hex[:6]
    servers = {host: cells_cloud.boot(f'cell-{tag}-{host}', host)
               for host in ('compute-1', 'compute-2')}
    cells_cloud.control('POST', f'/sim/cells/{DOWN}', {'down': True})
    try:
        yield servers
    finally:
        cells_cloud.control('POST', f'/sim/cells/{DOWN}', {'down': False})


def call(cloud, method, path, microversion, body=None):
    conn = cloud.connection()
    endpoint = conn.compute.get_endpoint().rstrip('/')
    resp = requests.request(method, endpoint + path, json=body, timeout=60,
                            headers={'X-Auth-Token': conn.session.get_token(),
                                     'OpenStack-API-Version':
                                         f'compute {microversion}'})
    return resp.status_code, (resp.json() if resp.content else None)


def test_cells_hold_their_hosts(cells_cloud):
    cells = {c['name']: c for c in cells_cloud.control('GET', '/sim/cells')
             ['cells']}
    assert {n: (c['down'], c['hosts']) for n, c in cells.items()} == {
        'cell1': (False, ['compute-1', 'compute-3']),
        'cell2': (False, ['compute-2', 'compute-4'])}


@pytest.mark.parametrize('microversion', ['2.69', '2.94', '2.100'])
def test_down_cell_services_are_listed_first_without_state(
        cells_cloud, down_cell, microversion):
    code, body = call(cells_cloud, 'GET', '/os-services?binary=nova-compute',
                      microversion)
    assert code == 200
    assert body['services'][:2] == [
        {'binary': 'nova-compute', 'host': h, 'status': 'UNKNOWN'}
        for h in ('compute-2', 'compute-4')]
    rest = body['services'][2:]
    assert sorted(s['host'] for s in rest) == ['compute-1', 'compute-3']
    assert all(s['state'] == 'up' and 'id' in s for s in rest)


def test_down_cell_services_are_left_out_before_2_69(cells_cloud,
                                                     down_cell):
    code, body = call(cells_cloud, 'GET', '/os-services?binary=nova-compute',
                      '2.68')
    assert code == 200
    assert sorted(s['host'] for s in body['services']) == [
        'compute-1', 'compute-3']


def test_host_filter_keeps_the_down_cell_entry(cells_cloud, down_cell):
    assert call(cells_cloud, 'GET', '/os-services?host=compute-2',
                '2.94')[1] == {'services': [{
                    'binary': 'nova-compute', 'host': 'compute-2',
                    'status': 'UNKNOWN'}]}


@pytest.mark.parametrize('path', ['/os-hypervisors',
                                  '/os-hypervisors/detail'])
def test_hypervisors_fail_while_a_cell_is_down(cells_cloud, down_cell, path):
    code, body = call(cells_cloud, 'GET', path, '2.87')
    assert code == 500
    assert DB_ERROR in body['computeFault']['message']


def test_down_cell_servers_in_lists(cells_cloud, down_cell):
    hidden = down_cell['compute-2']
    code, body = call(cells_cloud, 'GET', '/servers/detail?all_tenants=1',
                      '2.94')
    assert code == 200
    partial = [s for s in body['servers'] if s['status'] == 'UNKNOWN']
    assert hidden in {s['id'] for s in partial}
    assert body['servers'][:len(partial)] == partial
    assert all(set(s) == PARTIAL_IN_LIST for s in partial)
    code, brief = call(cells_cloud, 'GET', '/servers?all_tenants=1', '2.94')
    entry = next(s for s in brief['servers'] if s['id'] == hidden)
    assert set(entry) == {'id', 'status', 'links'}
    # a filter, paging or an older microversion: the cell is left out
    for path, version in (
            ('/servers/detail?all_tenants=1', '2.68'),
            ('/servers/detail?all_tenants=1&host=compute-2', '2.94'),
            ('/servers/detail?all_tenants=1&limit=100', '2.94')):
        code, body = call(cells_cloud, 'GET', path, version)
        assert code == 200, path
        assert hidden not in {s['id'] for s in body['servers']}, path
    code, body = call(cells_cloud, 'GET',
                      '/servers/detail?all_tenants=1&host=compute-1', '2.94')
    assert down_cell['compute-1'] in {s['id'] for s in body['servers']}
    assert {s['OS-EXT-SRV-ATTR:host'] for s in body['servers']} == {
        'compute-1'}


def test_down_cell_server_show_per_microversion(cells_cloud, down_cell):
    hidden = down_cell['compute-2']
    code, body = call(cells_cloud, 'GET', f'/servers/{hidden}', '2.94')
    assert code == 200
    assert set(body['server']) == PARTIAL_SHOW
    assert (body['server']['status'],
            body['server']['OS-EXT-AZ:availability_zone']) == (
        'UNKNOWN', 'UNKNOWN')
    code, body = call(cells_cloud, 'GET', f'/servers/{hidden}', '2.68')
    assert code == 500 and NOVA_ERROR in body['computeFault']['message']
    code, body = call(cells_cloud, 'GET', f'/servers/{hidden}', '2.100')
    assert code == 400
    assert 'is not valid under any of the given schemas' in body[
        'badRequest']['message']


def test_down_cell_server_cannot_be_evacuated(cells_cloud, down_cell):
    code, body = call(cells_cloud, 'POST',
                      f'/servers/{down_cell["compute-2"]}/action', '2.94',
                      {'evacuate': {}})
    assert code == 500 and NOVA_ERROR in body['computeFault']['message']


def test_migrations_before_2_59_fail_while_a_cell_is_down(cells_cloud,
                                                          down_cell):
    code, body = call(cells_cloud, 'GET', '/os-migrations', '2.58')
    assert code == 500 and DB_ERROR in body['computeFault']['message']
    assert call(cells_cloud, 'GET', '/os-migrations', '2.59')[0] == 200


def test_monitor_sees_the_down_cell_as_unknown_hosts(cells_cloud, down_cell):
    conn = cloud_module.connect_to(cells_cloud.cloud, cells_cloud.clouds_yaml,
                                   None, 30.0, '2.94')
    monitor = NovaMonitor(conn)
    seen = {o.host: o for o in monitor.hosts()}
    assert {h: o.state for h, o in seen.items()} == {
        'compute-1': 'up', 'compute-2': 'unknown', 'compute-3': 'up',
        'compute-4': 'unknown'}
    assert not any(o.is_down for o in seen.values())
    assert 'UNKNOWN' in seen['compute-2'].evidence['unknown']


def test_the_cell_comes_back(cells_cloud):
    cells_cloud.control('POST', f'/sim/cells/{DOWN}', {'down': True})
    cells_cloud.control('POST', f'/sim/cells/{DOWN}', {'down': False})
    conn = helpers.connect(cells_cloud, compute_api_version='2.94')
    services = list(conn.compute.services(binary='nova-compute'))
    assert sorted((s.host, s.state) for s in services) == [
        (f'compute-{i}', 'up') for i in range(1, 5)]
