"""The nova monitor against the simulated cloud over real HTTP."""
from __future__ import annotations

import pytest

from freezer_dr import cloud
from freezer_dr import exceptions
from freezer_dr.demo.etcd_server import free_port
from freezer_dr.monitors.nova import NovaMonitor
from tests import nova_support as support


def monitor_for(handle, clouds_yaml=None, **nova_opts):
    conf = support.config_for(handle, clouds_yaml,
                              monitor_nova=nova_opts)
    return NovaMonitor.from_config(conf, cloud.connect(conf))


def by_host(observations):
    return {o.host: o for o in observations}


def test_every_compute_host_is_reported_up(sim_cloud):
    seen = by_host(monitor_for(sim_cloud).hosts())
    assert sorted(seen) == sorted(sim_cloud.hosts)
    for obs in seen.values():
        assert obs.state == 'up' and not obs.is_down
        assert obs.status == 'enabled' and not obs.forced_down
        assert obs.updated_at


def test_crashed_host_is_down_after_service_down_time(sim_cloud):
    monitor = monitor_for(sim_cloud, check_hypervisor=True, rule='all')
    failed, healthy = sim_cloud.hosts[0], sim_cloud.hosts[1]
    sim_cloud.fail(failed, 'crash')
    seen = support.wait_until(
        lambda: (lambda s: s if s[failed].is_down else None)(
            by_host(monitor.hosts())),
        timeout=sim_cloud.service_down_time * 4 + 10,
        what=f'{failed} reported down')
    assert seen[failed].state == 'down'
    assert seen[failed].evidence['service_state'] == 'down'
    assert seen[failed].evidence['hypervisor_state'] == 'down'
    assert not seen[healthy].is_down
    assert seen[healthy].evidence['hypervisor_state'] == 'up'


def test_one_request_per_source_per_look(sim_cloud):
    monitor = monitor_for(sim_cloud, check_hypervisor=True)
    conn = monitor._conn
    monitor.hosts()                      # first look: auth and discovery
    log = support.RequestLog(conn)
    monitor.hosts()
    paths = [e['url'].split('?')[0].rsplit('/v2.1', 1)[-1]
             for e in log.entries]
    assert sorted(paths) == ['/os-hypervisors/detail', '/os-services']
    versions = {e['url'].split('?')[0].rsplit('/', 1)[-1]:
                e['headers'].get('OpenStack-API-Version')
                for e in log.entries}
    assert versions == {'detail': 'compute 2.87',
                        'os-services': 'compute 2.94'}


def test_wrong_credentials_make_the_monitor_unavailable(sim_cloud,
                                                       tmp_path):
    bad = support.clouds_yaml_with_bad_secret(sim_cloud, str(tmp_path),
                                              'wrong-password')
    with pytest.raises(exceptions.MonitorUnavailable) as err:
        monitor_for(sim_cloud, clouds_yaml=bad).hosts()
    assert 'HTTP 401' in str(err.value)
    assert 'wrong-password' not in str(err.value)


def dead_monitor(clouds_yaml, name, timeout=5.0):
    conn = cloud.connect_to(name, clouds_yaml, None, timeout, '2.94')
    return NovaMonitor(conn)


def test_closed_port_makes_the_monitor_unavailable(tmp_path):
    path = tmp_path / 'clouds.yaml'
    path.write_text(
        'clouds:\n  dead:\n    auth_type: admin_token\n    auth:\n'
        f'      endpoint: http://127.0.0.1:{free_port()}/v2.1\n'
        '      token: unused\n')
    with pytest.raises(exceptions.MonitorUnavailable,
                       match='cannot read compute services'):
        dead_monitor(str(path), 'dead').hosts()


def test_server_error_makes_the_monitor_unavailable(tmp_path):
    with support.failing_nova(status=500) as nova:
        monitor = dead_monitor(nova.clouds_yaml(str(tmp_path)), 'failing')
        with pytest.raises(exceptions.MonitorUnavailable) as err:
            monitor.hosts()
    assert 'HTTP 500' in str(err.value)
    assert 'simulated server failure' in str(err.value)


def test_api_timeout_makes_the_monitor_unavailable(tmp_path):
    with support.failing_nova(status=200, delay=5.0) as nova:
        monitor = dead_monitor(nova.clouds_yaml(str(tmp_path)), 'failing',
                               timeout=0.5)
        with pytest.raises(exceptions.MonitorUnavailable,
                           match='timed out'):
            monitor.hosts()


def test_missing_network_endpoint_fails_closed_under_rule_all(sim_cloud):
    # The simulated cloud has no Neutron in its catalog.
    monitor = monitor_for(sim_cloud, check_network_agent=True, rule='all')
    with pytest.raises(exceptions.MonitorUnavailable,
                       match='network agents'):
        monitor.hosts()


@pytest.mark.parametrize('rule', ['service', 'any'])
def test_missing_network_endpoint_is_no_word_under_other_rules(sim_cloud,
                                                               rule):
    # Under 'service' the agents never vote; under 'any' a silent source
    # can only make fewer hosts down: neither needs to go blind.
    monitor = monitor_for(sim_cloud, check_network_agent=True, rule=rule)
    seen = by_host(monitor.hosts())
    assert sorted(seen) == sorted(sim_cloud.hosts)
    for obs in seen.values():
        assert obs.state == 'up' and not obs.is_down
        assert obs.evidence['network_agent_alive'] is None
        assert 'network agents' in obs.evidence['network_agent_unknown']
    assert any('network agents' in p for p in monitor.last_notes.problems)


def test_paged_hypervisor_list_is_read_to_the_end(tmp_path):
    # Real Nova pages os-hypervisors by [api] max_limit (1000): at 5,000
    # hosts a look must follow the next links.
    def answer(path):
        if path.startswith('/v2.1/os-services'):
            return 200, {'services': [
                {'binary': 'nova-compute', 'host': f'c{i}', 'state': 'up',
                 'status': 'enabled', 'forced_down': False,
                 'updated_at': None, 'disabled_reason': None}
                for i in range(3)]}
        page = 2 if 'marker=' in path else 1
        hyps = [{'hypervisor_hostname': f'c{i}.example', 'state': 'up',
                 'service': {'host': f'c{i}'}}
                for i in ((0, 1) if page == 1 else (2,))]
        body = {'hypervisors': hyps}
        if page == 1:
            body['hypervisors_links'] = [{'rel': 'next', 'href': (
                f'{nova.url}/os-hypervisors/detail?limit=2&marker=c1')}]
        return 200, body

    with support.loopback_nova(answer) as nova:
        monitor = NovaMonitor(
            cloud.connect_to('failing', nova.clouds_yaml(str(tmp_path)),
                             None, 5.0, '2.94'), check_hypervisor=True)
        seen = by_host(monitor.hosts())
    assert {h: o.evidence['hypervisor_state'] for h, o in seen.items()} == {
        'c0': 'up', 'c1': 'up', 'c2': 'up'}
    assert sum('os-hypervisors' in p for p in nova.paths) == 2


@pytest.mark.parametrize('rule,down', [('service', set()),
                                       ('any', {'c1'}),
                                       ('all', set())])
def test_network_agents_vote_by_rule(tmp_path, rule, down):
    # c0: one dead agent, one alive (alive); c1: all dead; c2: no agent.
    def answer(path):
        if 'os-services' in path:
            return 200, {'services': [
                {'binary': 'nova-compute', 'host': h, 'state': 'up',
                 'status': 'enabled'} for h in ('c0', 'c1', 'c2')]}
        assert path.endswith('/agents')
        return 200, {'agents': [
            {'host': 'c0', 'alive': False, 'binary': 'ovs-agent'},
            {'host': 'c0', 'alive': True, 'binary': 'dhcp-agent'},
            {'host': 'c1', 'alive': False, 'binary': 'ovs-agent'}]}

    with support.loopback_nova(answer) as nova:
        monitor = NovaMonitor(
            cloud.connect_to('failing', nova.clouds_yaml(str(tmp_path)),
                             None, 5.0, '2.94'),
            check_network_agent=True, rule=rule)
        seen = by_host(monitor.hosts())
    assert {h for h, o in seen.items() if o.is_down} == down
    assert {h: o.evidence['network_agent_alive']
            for h, o in seen.items()} == {'c0': True, 'c1': False,
                                          'c2': None}
