"""The contract suite's fixtures: every test runs against both clouds.

``cloud`` is parametrized over the simulator (H2's ``sim_cloud``, first:
it is fast) and the real-Nova box (``realnova_cloud``, skipped when nova is
not importable). The tests talk to a cloud only through openstacksdk, the
BMCs' IPMI and the CloudHandle protocol, so a test that passes on real Nova
and fails on the simulator shows a simulator bug.
"""

import collections

import pytest

from tests import cloud_helpers as helpers

CLOUDS = ['sim', 'realnova']

_next_victim: dict[int, int] = collections.defaultdict(int)


@pytest.fixture(params=CLOUDS)
def cloud(request):
    """A CloudHandle: the simulator or real Nova."""
    # a broken fixture fails the test; only the real-Nova box skips, and
    # only when nova is not installed (it names the missing extra)
    return request.getfixturevalue(f'{request.param}_cloud')


@pytest.fixture
def conn(cloud):
    """An admin openstacksdk connection (newest microversion)."""
    return cloud.connection()


@pytest.fixture
def victim(cloud, conn):
    """A compute host a test may fail; healthy again after the test.

    Hosts are handed out in turn so a test rarely waits for the previous
    test's host to come back.
    """
    index = _next_victim[id(cloud)]
    _next_victim[id(cloud)] += 1
    host = cloud.hosts[index % len(cloud.hosts)]
    helpers.wait_until(
        lambda: helpers.service_of(conn, host).state == 'up',
        cloud.service_down_time + 30, f'{host} up before the test')
    yield host
    helpers.restore_host(cloud, conn, host)
