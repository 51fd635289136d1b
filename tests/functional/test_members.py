"""Group membership (tooz on a real etcd): who is alive, in which role."""
from __future__ import annotations

import os

import pytest
from tooz import coordination
from tooz.drivers import etcd3gw as tooz_etcd3gw

from freezer_dr import exceptions
from freezer_dr.demo.cluster import wait_for
from freezer_dr.ha import etcd
from freezer_dr.ha import members as ha_members
from freezer_dr.ha import tooz_driver

HTTP_TIMEOUT = 0.5
MEMBERSHIP_TIMEOUT = 2.0


@pytest.fixture
def joined():
    started: list[ha_members.Membership] = []

    def join(url: str, cluster: str, member: str, **caps):
        membership = ha_members.Membership(
            url, cluster, member, caps, MEMBERSHIP_TIMEOUT, HTTP_TIMEOUT)
        membership.start()
        started.append(membership)
        return membership

    yield join
    for membership in started:
        try:
            membership.stop()
        except exceptions.StoreUnavailable:
            pass


def ids(members: list[dict]) -> list[str]:
    return [m['member_id'] for m in members]


def test_members_list_with_capabilities(etcd_url, cluster_name, joined):
    a = joined(etcd_url, cluster_name, 'a', api='127.0.0.1:1')
    joined(etcd_url, cluster_name, 'b')
    found = a.members()
    assert ids(found) == ['a', 'b']
    first = found[0]
    assert first['api'] == '127.0.0.1:1'
    assert first['pid'] == os.getpid()
    assert first['role'] == 'standby'
    assert {'host', 'version', 'started_at'} <= set(first)
    a.update(role='leader')
    listed = ha_members.list_members(etcd_url, cluster_name, HTTP_TIMEOUT)
    assert [m['role'] for m in listed] == ['leader', 'standby']


def test_clusters_do_not_see_each_other(etcd_url, cluster_name, joined):
    joined(etcd_url, cluster_name, 'a')
    other = joined(etcd_url, cluster_name + '-other', 'z')
    assert ids(other.members()) == ['z']


def test_stopped_member_leaves(etcd_url, cluster_name, joined):
    a = joined(etcd_url, cluster_name, 'a')
    b = joined(etcd_url, cluster_name, 'b')
    b.stop()
    assert ids(a.members()) == ['a']


def test_list_members_of_an_unknown_cluster_is_empty(etcd_url,
                                                     cluster_name):
    assert ha_members.list_members(etcd_url, cluster_name,
                                   HTTP_TIMEOUT) == []


def test_silent_member_drops_out_and_rejoins_when_etcd_answers_again(
        etcd_url, etcd_proxy, cluster_name, joined):
    joined(etcd_url, cluster_name, 'a')
    cut_off = joined(etcd_proxy.url, cluster_name, 'b', api='b:1')
    etcd_proxy.close()
    wait_for(lambda: ids(ha_members.list_members(
        etcd_url, cluster_name, HTTP_TIMEOUT)) == ['a'],
        MEMBERSHIP_TIMEOUT + 3, 'the cut-off member to leave the list')
    etcd_proxy.forward()
    wait_for(lambda: ids(ha_members.list_members(
        etcd_url, cluster_name, HTTP_TIMEOUT)) == ['a', 'b'], 5,
        'the healed member back in the list')
    assert cut_off.members()[1]['api'] == 'b:1'


def test_bad_backend_url_is_a_config_error():
    with pytest.raises(exceptions.ConfigError, match='backend_url'):
        ha_members.Membership('etcd://127.0.0.1:1', 'c', 'a', {}, 2, 1)\
            .start()


def test_members_are_read_through_the_public_tooz_api(etcd_url,
                                                      cluster_name, joined):
    """Our tooz backend and tooz's own etcd3gw driver see the same group:
    a member joined by stock tooz is listed, ours is seen by stock tooz."""
    ours = joined(etcd_url, cluster_name, 'a', api='a:1')
    assert isinstance(ours._coord, tooz_driver.FailoverEtcd3Driver)
    group = ha_members.group_id(cluster_name).encode()
    stock = coordination.get_coordinator(
        etcd_url + '?timeout=2&membership_timeout=5', b'stock')
    stock.start(start_heart=False)
    try:
        stock.join_group(group, {'role': 'standby'}).get()
        assert ids(ours.members()) == ['a', 'stock']
        assert stock.get_member_capabilities(group, b'a').get()['api'] == \
            'a:1'
    finally:
        stock.stop()
    assert ids(ours.members()) == ['a']


def test_listing_members_holds_no_lease(etcd_url, etcd_client,
                                        cluster_name, joined):
    """The CLI's coordinator reads without joining: it grants no lease."""
    joined(etcd_url, cluster_name, 'a')
    before = set(etcd.list_leases(etcd_client))
    for _ in range(3):
        assert ids(ha_members.list_members(etcd_url, cluster_name,
                                           HTTP_TIMEOUT)) == ['a']
    assert set(etcd.list_leases(etcd_client)) - before == set()


def test_an_unreadable_member_record_is_listed_without_capabilities(
        etcd_url, etcd_client, cluster_name, joined):
    a = joined(etcd_url, cluster_name, 'a')
    prefix = tooz_etcd3gw.Etcd3Driver.GROUP_PREFIX.decode()
    etcd_client.put(f'{prefix}{ha_members.group_id(cluster_name)}/junk',
                    'not msgpack \xc1')
    assert a.members()[1] == {'member_id': 'junk'}
    assert a.members()[0]['member_id'] == 'a'

