"""Contract: compute services, heartbeats, force-down, disable, BMC power."""

import time

import pytest
from pyghmi.ipmi import command as ipmi_command

from freezer_dr.monitors.nova import HYPERVISOR_MICROVERSION
from tests import cloud_helpers as helpers


def test_every_host_has_one_compute_service_up_and_enabled(cloud, conn):
    services = [s for s in conn.compute.services()
                if s.binary == helpers.COMPUTE]
    assert sorted(s.host for s in services) == sorted(cloud.hosts)
    for service in services:
        assert (service.state, service.status, service.is_forced_down) == (
            'up', 'enabled', False), service.host
        assert service.updated_at, service.host


def test_services_filtered_by_host_and_binary(cloud, conn):
    host = cloud.hosts[-1]
    found = list(conn.compute.services(host=host, binary=helpers.COMPUTE))
    assert [(s.host, s.binary) for s in found] == [(host, helpers.COMPUTE)]


@pytest.mark.parametrize('mode', ['crash', 'partition'])
def test_host_without_heartbeat_goes_down_after_service_down_time(
        cloud, conn, victim, mode):
    failed_at = time.monotonic()
    cloud.fail(victim, mode)
    helpers.wait_until(
        lambda: helpers.service_of(conn, victim).state == 'down',
        cloud.service_down_time + 30, f'{victim} down after {mode}')
    took = time.monotonic() - failed_at
    # The last heartbeat is at most one report interval (1 s) old when the
    # host fails: it cannot read down much before service_down_time.
    assert took >= cloud.service_down_time - 2, took
    assert cloud.power(victim) == 'on'
    service = helpers.service_of(conn, victim)
    assert (service.status, service.is_forced_down) == ('enabled', False)


def test_force_down_and_disable_with_reason(cloud, conn, victim):
    service = helpers.service_of(conn, victim)
    conn.compute.update_service_forced_down(service, forced=True)
    reason = 'freezer-dr: fenced by IPMI, recovery r-1'
    conn.compute.disable_service(service, disabled_reason=reason)
    service = helpers.service_of(conn, victim)
    # forced_down reads down at once, without waiting for heartbeats.
    assert (service.state, service.is_forced_down) == ('down', True)
    assert (service.status, service.disabled_reason) == ('disabled', reason)
    conn.compute.update_service_forced_down(service, forced=False)
    conn.compute.enable_service(service)
    service = helpers.service_of(conn, victim)
    assert (service.state, service.status, service.is_forced_down) == (
        'up', 'enabled', False)
    assert service.disabled_reason is None


def test_hypervisor_state_follows_the_compute_service(cloud, conn, victim):
    def states():
        return {(h.service_details or {}).get('host'): h.state
                for h in conn.compute.hypervisors(
                    details=True, microversion=HYPERVISOR_MICROVERSION)}

    assert states() == {host: 'up' for host in cloud.hosts}
    cloud.fail(victim, 'crash')
    service = helpers.service_of(conn, victim)
    conn.compute.update_service_forced_down(service, forced=True)
    assert states() == {host: 'down' if host == victim else 'up'
                        for host in cloud.hosts}


def test_ipmi_power_off_stops_the_host(cloud, conn, victim):
    bmc = cloud.bmc(victim)     # both clouds have one BMC per host
    ipmi = ipmi_command.Command(
        bmc=bmc['address'], userid=bmc['username'].encode(),
        password=bmc['password'].encode(), port=bmc['port'])
    try:
        assert ipmi.get_power()['powerstate'] == 'on'
        off_at = time.monotonic()
        ipmi.set_power('off', wait=False)
        assert ipmi.get_power()['powerstate'] == 'off'
        assert cloud.power(victim) == 'off'
        helpers.wait_until(
            lambda: helpers.service_of(conn, victim).state == 'down',
            cloud.service_down_time + 30, f'{victim} down after power off')
        assert time.monotonic() - off_at >= cloud.service_down_time - 2
        offs = [e for e in cloud.bmc_log()
                if e['host'] == victim and e['command'] == 'off']
        assert offs and offs[-1]['result'] == 'ok'
        ipmi.set_power('on', wait=False)
        assert cloud.power(victim) == 'on'
    finally:
        ipmi.ipmi_session.logout()
