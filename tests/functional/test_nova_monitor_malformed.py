"""The nova monitor survives any data a Nova (or Neutron) may send.

Shapes no real Nova returns are served by a loopback endpoint over real
HTTP; the down-cell shape real Nova does return is also checked against
the simulator's down-cell fault (``test_simulator_cells.py``) and real
Nova (``tests/contract/test_cells.py``).
"""
from __future__ import annotations

import pytest

from freezer_dr import cloud
from freezer_dr import exceptions
from freezer_dr.monitors.nova import NovaMonitor
from tests import nova_support as support

UP = {'binary': 'nova-compute', 'state': 'up', 'status': 'enabled',
      'forced_down': False, 'updated_at': '2026-11-26T10:00:00.000000',
      'disabled_reason': None}
#: what Nova >= 2.69 lists for a compute service in a cell it cannot reach
DOWN_CELL = {'binary': 'nova-compute', 'status': 'UNKNOWN'}


def service(host, **fields):
    return dict(UP, host=host, **fields)


def answering(services=None, hypervisors=None, agents=None):
    """An ``answer`` for LoopbackNova serving the given bodies."""
    def answer(path):
        if 'os-services' in path:
            return 200, services
        if 'os-hypervisors' in path:
            return 200, hypervisors
        if path.endswith('/agents'):
            return 200, agents
        return 404, {'itemNotFound': {'code': 404, 'message': path}}
    return answer


def look(tmp_path, answer, **options):
    """One look of a monitor at a loopback Nova; (observations by host,
    the monitor)."""
    with support.loopback_nova(answer) as nova:
        monitor = NovaMonitor(
            cloud.connect_to('failing', nova.clouds_yaml(str(tmp_path)),
                             None, 5.0, '2.94'), **options)
        seen = {o.host: o for o in monitor.hosts()}
    return seen, monitor


def test_down_cell_services_are_unknown_hosts_not_an_error(tmp_path):
    seen, monitor = look(tmp_path, answering({'services': [
        service('c1'), service('c2', state='down'),
        dict(DOWN_CELL, host='c3'), dict(DOWN_CELL, host='c4')]}))
    assert sorted(seen) == ['c1', 'c2', 'c3', 'c4']
    assert (seen['c1'].state, seen['c1'].is_down) == ('up', False)
    assert (seen['c2'].state, seen['c2'].is_down) == ('down', True)
    for host in ('c3', 'c4'):
        obs = seen[host]
        assert obs.is_unknown and not obs.is_down
        assert obs.state == 'unknown'
        assert 'cell' in obs.evidence['unknown']
        assert 'UNKNOWN' in obs.evidence['unknown']
        assert obs.evidence['service_status'] == 'UNKNOWN'
    assert monitor.last_notes.unnamed_entries == 0
    assert [p.split(':')[0] for p in monitor.last_notes.problems] == [
        'c3', 'c4']


@pytest.mark.parametrize('fields, reason', [
    ({'state': None}, 'neither up nor down'),
    ({'state': 'sideways'}, "'sideways' is neither up nor down"),
    ({'state': ['up']}, 'neither up nor down'),
    ({'status': 'UNKNOWN'}, 'neither enabled nor disabled'),
    ({'status': None}, 'neither enabled nor disabled'),
    ({'forced_down': 'yes'}, 'forced_down'),
    ({'updated_at': 12}, 'updated_at 12 is not a timestamp'),
    ({'updated_at': 'yesterday'}, 'not a timestamp'),
    ({'disabled_reason': {'why': 1}}, 'disabled_reason'),
    ({'binary': 5}, 'binary 5 is not text'),
], ids=['state-null', 'state-word', 'state-list', 'status-unknown',
        'status-null', 'forced-text', 'updated-number', 'updated-word',
        'reason-object', 'binary-number'])
def test_unreadable_service_entry_makes_only_its_host_unknown(
        tmp_path, fields, reason):
    seen, monitor = look(tmp_path, answering({'services': [
        service('good'), service('bad', **fields)]}))
    assert seen['good'].state == 'up'
    bad = seen['bad']
    assert bad.is_unknown and not bad.is_down
    assert reason in bad.evidence['unknown']
    assert monitor.last_notes.problems == (
        f'bad: {bad.evidence["unknown"]}',)


def test_service_without_state_is_unknown(tmp_path):
    entry = service('nostate')
    del entry['state']
    seen, _ = look(tmp_path, answering({'services': [entry]}))
    assert seen['nostate'].is_unknown
    assert seen['nostate'].evidence['unknown'] == 'service entry has no state'


def test_entries_without_a_host_are_counted_not_raised(tmp_path):
    seen, monitor = look(tmp_path, answering({'services': [
        service('good'), dict(UP), service(''), service(None),
        service(7), 'nova-compute', ['c9', 'up'], None]}))
    assert list(seen) == ['good']
    assert monitor.last_notes.unnamed_entries == 7
    assert len(monitor.last_notes.problems) == 7
    assert all('names no host' in p or 'not an object' in p
               for p in monitor.last_notes.problems)
    assert monitor.last_notes


def test_notes_are_cleared_by_a_clean_look(tmp_path):
    bodies = [{'services': [service('c1'), dict(UP)]},
              {'services': [service('c1')]}]

    def answer(path):
        return 200, bodies[0] if len(bodies) == 2 else bodies[-1]

    with support.loopback_nova(answer) as nova:
        monitor = NovaMonitor(cloud.connect_to(
            'failing', nova.clouds_yaml(str(tmp_path)), None, 5.0, '2.94'))
        monitor.hosts()
        assert monitor.last_notes.unnamed_entries == 1
        bodies.pop(0)
        monitor.hosts()
    assert not monitor.last_notes


def test_a_host_listed_twice_is_unknown(tmp_path):
    seen, _ = look(tmp_path, answering({'services': [
        service('twin'), service('twin', state='down'), service('c1')]}))
    assert sorted(seen) == ['c1', 'twin']
    assert seen['twin'].is_unknown
    assert '2 nova-compute services' in seen['twin'].evidence['unknown']


def test_other_binaries_are_left_out(tmp_path):
    seen, monitor = look(tmp_path, answering({'services': [
        service('c1'), dict(UP, binary='nova-scheduler', host='ctl'),
        {'binary': 'nova-conductor', 'host': 'ctl', 'status': 'UNKNOWN'}]}))
    assert list(seen) == ['c1']
    assert not monitor.last_notes


@pytest.mark.parametrize('body', [
    b'<html>503 Service Unavailable</html>',
    [{'host': 'c1'}],
    {},
    {'services': {'c1': 'up'}},
    {'services': 'c1'},
    {'services': None},
    {'services': [], 'services_links': 'next'},
    {'services': [], 'services_links': [{'rel': 'next', 'href': 5}]},
], ids=['not-json', 'list', 'no-key', 'object', 'text', 'null',
        'links-text', 'link-href-number'])
def test_services_answer_of_the_wrong_shape_makes_the_monitor_unavailable(
        tmp_path, body):
    with pytest.raises(exceptions.MonitorUnavailable,
                       match='cannot read compute services'):
        look(tmp_path, answering(body))


@pytest.mark.parametrize('body, why', [
    ({'hypervisors': 'none'}, "'hypervisors' is 'none', not a list"),
    ({}, "'hypervisors' is None, not a list"),
    (b'not json', 'not JSON'),
], ids=['text', 'no-key', 'not-json'])
@pytest.mark.parametrize('rule, c2_down', [('all', True), ('any', True),
                                           ('service', True)])
def test_unreadable_hypervisor_list_is_no_word(tmp_path, body, why, rule,
                                               c2_down):
    seen, monitor = look(
        tmp_path, answering({'services': [service('c1'),
                                          service('c2', state='down')]},
                            hypervisors=body),
        check_hypervisor=True, rule=rule)
    for obs in seen.values():
        assert obs.evidence['hypervisor_state'] is None
        assert why in obs.evidence['hypervisor_unknown']
    assert not seen['c1'].is_down
    assert seen['c2'].is_down is c2_down
    assert any(why in p for p in monitor.last_notes.problems)


def test_unreadable_hypervisor_entries_are_no_word_for_their_host(tmp_path):
    hyps = [
        {'hypervisor_hostname': 'c1', 'state': 'up',
         'service': {'host': 'c1'}},
        {'hypervisor_hostname': 'c2', 'state': 'maybe',
         'service': {'host': 'c2'}},
        {'hypervisor_hostname': 'c3', 'state': 'down', 'service': 'c3'},
        # an ironic host: one node up, one unreadable -> up
        {'hypervisor_hostname': 'n1', 'state': None,
         'service': {'host': 'c4'}},
        {'hypervisor_hostname': 'n2', 'state': 'up',
         'service': {'host': 'c4'}},
        {'state': 'down', 'service': {'host': None}},
        'c5']
    seen, monitor = look(
        tmp_path, answering({'services': [
            service(h, state='down') for h in ('c1', 'c2', 'c3', 'c4')]},
            hypervisors={'hypervisors': hyps}),
        check_hypervisor=True, rule='all')
    states = {h: o.evidence['hypervisor_state'] for h, o in seen.items()}
    assert states == {'c1': 'up', 'c2': None, 'c3': 'down', 'c4': 'up'}
    assert "'maybe'" in seen['c2'].evidence['hypervisor_unknown']
    # rule all: a source with no word does not hold the verdict back
    assert {h for h, o in seen.items() if o.is_down} == {'c2', 'c3'}
    assert sum('names no host' in p or 'not an object' in p
               for p in monitor.last_notes.problems) == 2
    assert monitor.last_notes.unnamed_entries == 0   # services were fine


def test_unreadable_network_agents_are_no_word(tmp_path):
    agents = {'agents': [
        {'host': 'c1', 'alive': 'yes'},
        {'host': 'c2', 'alive': False}, {'host': 'c2', 'alive': 1},
        {'host': 'c3', 'alive': False}, {'alive': True}, 42]}
    seen, monitor = look(
        tmp_path, answering({'services': [
            service(h, state='down') for h in ('c1', 'c2', 'c3')]},
            agents=agents),
        check_network_agent=True, rule='all')
    alive = {h: o.evidence['network_agent_alive'] for h, o in seen.items()}
    assert alive == {'c1': None, 'c2': None, 'c3': False}
    assert 'not a boolean' in seen['c1'].evidence['network_agent_unknown']
    assert all(o.is_down for o in seen.values())
    assert len(monitor.last_notes.problems) == 4


def test_network_agent_answer_of_the_wrong_shape_is_no_word(tmp_path):
    seen, _ = look(
        tmp_path, answering({'services': [service('c1', state='down')]},
                            agents={'agents': {'c1': True}}),
        check_network_agent=True, rule='any')
    assert seen['c1'].is_down
    assert seen['c1'].evidence['network_agent_alive'] is None
    assert 'network agents' in seen['c1'].evidence['network_agent_unknown']
