"""The simulator's cells: hosts spread over cells, and a cell Nova cannot
reach, answered as real Nova 34 answers it (``tests/contract/test_cells.py``
holds the two together); the nova monitor and evacuator against it."""
from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from freezer_dr import cloud as cloud_module
from freezer_dr import exceptions
from freezer_dr.evacuators.nova import NovaEvacuator
from freezer_dr.monitors.nova import NovaMonitor
from tests import nova_support as support
from tests.functional.test_simulator_cli import cli


@pytest.fixture
def cells_cloud(sim_cloud_factory):
    """4 hosts over 2 cells (compute-1, -3 in cell1; -2, -4 in cell2),
    one server per host."""
    return sim_cloud_factory(hosts=4, instances=4, bmcs=False,
                             extra_args=['--cells', '2'])


def get(cloud, path, microversion):
    conn = cloud.connection()
    token = conn.session.get_token()
    endpoint = conn.compute.get_endpoint().rstrip('/')
    resp = requests.get(endpoint + path, timeout=30, headers={
        'X-Auth-Token': token,
        'OpenStack-API-Version': f'compute {microversion}'})
    return resp.status_code, resp.json()


def servers_by_host(cloud):
    return {s.compute_host: s.id
            for s in cloud.connection().compute.servers(all_projects=True)}


def test_hosts_are_spread_over_cells_round_robin(cells_cloud):
    cells = {c['name']: c for c in cells_cloud.control('GET', '/sim/cells')
             ['cells']}
    assert {n: (c['down'], c['hosts']) for n, c in cells.items()} == {
        'cell1': (False, ['compute-1', 'compute-3']),
        'cell2': (False, ['compute-2', 'compute-4'])}
    rows = {h['host']: h['cell'] for h in cells_cloud.status()['hosts']}
    assert rows == {'compute-1': 'cell1', 'compute-2': 'cell2',
                    'compute-3': 'cell1', 'compute-4': 'cell2'}


def test_down_cell_services_per_microversion(cells_cloud):
    cli(cells_cloud, 'inject', '--down-cell', 'cell2')
    path = '/os-services?binary=nova-compute'
    code, old = get(cells_cloud, path, '2.68')
    assert code == 200
    assert [s['host'] for s in old['services']] == ['compute-1', 'compute-3']
    code, new = get(cells_cloud, path, '2.69')
    assert code == 200
    assert new['services'][:2] == [
        {'binary': 'nova-compute', 'host': 'compute-2', 'status': 'UNKNOWN'},
        {'binary': 'nova-compute', 'host': 'compute-4', 'status': 'UNKNOWN'}]
    assert [s['state'] for s in new['services'][2:]] == ['up', 'up']
    assert get(cells_cloud, '/os-services?host=compute-4', '2.94')[1] == {
        'services': [{'binary': 'nova-compute', 'host': 'compute-4',
                      'status': 'UNKNOWN'}]}
    # the scheduler and conductor (cell1) are still listed in full
    everything = get(cells_cloud, '/os-services', '2.94')[1]['services']
    assert {s['binary'] for s in everything if 'state' in s} == {
        'nova-compute', 'nova-scheduler', 'nova-conductor'}
    cli(cells_cloud, 'inject', '--up-cell', 'cell2')
    code, back = get(cells_cloud, path, '2.94')
    assert [s['state'] for s in back['services']] == ['up'] * 4


def test_down_cell_servers_hypervisors_and_migrations(cells_cloud):
    on = servers_by_host(cells_cloud)
    cells_cloud.control('POST', '/sim/cells/cell2', {'down': True})
    code, listed = get(cells_cloud, '/servers/detail?all_tenants=1', '2.94')
    assert code == 200
    down = [s for s in listed['servers'] if s['status'] == 'UNKNOWN']
    assert {s['id'] for s in down} == {on['compute-2'], on['compute-4']}
    assert listed['servers'][:2] == down
    assert all(set(s) == {'id', 'status', 'tenant_id', 'created', 'links'}
               for s in down)
    assert get(cells_cloud, '/servers?all_tenants=1', '2.94')[1][
        'servers'][0].keys() == {'id', 'status', 'links'}
    # a filter, or an older microversion: the down cell is left out
    for path, version in (('/servers/detail?all_tenants=1', '2.68'),
                          ('/servers/detail?all_tenants=1&host=compute-2',
                           '2.94'),
                          ('/servers/detail?all_tenants=1&limit=50', '2.94')):
        ids = {s['id'] for s in get(cells_cloud, path, version)[1]['servers']}
        assert not ids & {on['compute-2'], on['compute-4']}, path
    shown = get(cells_cloud, f'/servers/{on["compute-2"]}', '2.94')
    assert shown[0] == 200
    assert shown[1]['server']['status'] == 'UNKNOWN'
    assert 'OS-EXT-SRV-ATTR:host' not in shown[1]['server']
    assert get(cells_cloud, f'/servers/{on["compute-2"]}', '2.68')[0] == 500
    assert get(cells_cloud, f'/servers/{on["compute-2"]}', '2.100')[0] == 400
    for path in ('/os-hypervisors', '/os-hypervisors/detail'):
        code, body = get(cells_cloud, path, '2.87')
        assert code == 500 and 'DBError' in body['computeFault']['message']
    assert get(cells_cloud, '/os-migrations', '2.58')[0] == 500
    assert get(cells_cloud, '/os-migrations', '2.59')[0] == 200


def test_monitor_reports_a_down_cell_as_unknown_hosts(cells_cloud):
    conf = support.config_for(cells_cloud)
    monitor = NovaMonitor.from_config(conf, cloud_module.connect(conf))
    cli(cells_cloud, 'inject', '--down-cell', 'cell2')
    seen = {o.host: o for o in monitor.hosts()}
    assert {h: o.state for h, o in seen.items()} == {
        'compute-1': 'up', 'compute-2': 'unknown', 'compute-3': 'up',
        'compute-4': 'unknown'}
    assert not any(o.is_down for o in seen.values())
    assert 'cell' in seen['compute-2'].evidence['unknown']
    assert monitor.last_notes.unnamed_entries == 0


@pytest.mark.parametrize('rule', ['service', 'any'])
def test_hypervisor_check_is_no_word_while_a_cell_is_down(cells_cloud, rule):
    # Nova answers os-hypervisors with 500 while any cell is down: that
    # source goes quiet; the services still tell the healthy cell.
    conf = support.config_for(cells_cloud, monitor_nova={
        'check_hypervisor': True, 'rule': rule})
    monitor = NovaMonitor.from_config(conf, cloud_module.connect(conf))
    cells_cloud.fail('compute-1', 'crash')
    cli(cells_cloud, 'inject', '--down-cell', 'cell2')
    seen = support.wait_until(
        lambda: (lambda s: s if s['compute-1'].is_down else None)(
            {o.host: o for o in monitor.hosts()}),
        cells_cloud.service_down_time * 4 + 10, 'compute-1 down')
    assert seen['compute-1'].evidence['hypervisor_state'] is None
    assert 'HTTP 500' in seen['compute-1'].evidence['hypervisor_unknown']
    assert not seen['compute-3'].is_down
    assert seen['compute-2'].is_unknown


def test_hypervisor_check_with_rule_all_fails_closed_on_a_down_cell(
        cells_cloud):
    conf = support.config_for(cells_cloud, monitor_nova={
        'check_hypervisor': True, 'rule': 'all'})
    monitor = NovaMonitor.from_config(conf, cloud_module.connect(conf))
    cli(cells_cloud, 'inject', '--down-cell', 'cell2')
    with pytest.raises(exceptions.MonitorUnavailable,
                       match='cannot read hypervisors: HTTP 500'):
        monitor.hosts()


def test_evacuator_never_mistakes_a_down_cell_for_an_empty_host(
        cells_cloud):
    on = servers_by_host(cells_cloud)
    conf = support.config_for(cells_cloud)
    evacuator = NovaEvacuator.from_config(conf)
    cli(cells_cloud, 'inject', '--down-cell', 'cell2')
    with pytest.raises(exceptions.CloudUnavailable, match='cell'):
        evacuator.instances('compute-2')
    with pytest.raises(exceptions.CloudUnavailable, match='UNKNOWN'):
        evacuator.status(on['compute-2'])
    with pytest.raises(exceptions.CloudUnavailable, match='cell'):
        evacuator.isolate('compute-2', 'test')
    assert [i.id for i in evacuator.instances('compute-1')] == [
        on['compute-1']]


def test_cells_must_be_at_least_one(tmp_path):
    done = subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.sim', 'run', '--state-dir',
         str(tmp_path), '--cells', '0'], capture_output=True, text=True,
        timeout=60)
    assert done.returncode == 2
    assert '--cells must be at least 1' in done.stderr


def test_unknown_cell_is_refused(cells_cloud):
    with pytest.raises(Exception, match='404'):
        cells_cloud.control('POST', '/sim/cells/cell9', {'down': True})
    with pytest.raises(Exception, match='400'):
        cells_cloud.control('POST', '/sim/cells/cell2', {'down': 'yes'})
