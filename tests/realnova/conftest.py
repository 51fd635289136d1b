"""Fixtures of the real-Nova tier: one box (subprocess) per test module."""

import pytest

from tests.realnova.handle import RealNovaCloud
from tests.realnova.handle import nova_available

#: Short enough for quick tests, long enough for a loaded machine.
SERVICE_DOWN_TIME = 6
NO_NOVA = ('nova is not importable: the real-Nova box needs the realnova '
           'extra (tox -e realnova)')
#: Mark for tests that start a box themselves.
requires_nova = pytest.mark.skipif(not nova_available(), reason=NO_NOVA)


@pytest.fixture(scope='module')
def realnova_cloud(tmp_path_factory):
    """A running real-Nova box: real Keystone, 4 compute hosts in 2 cells
    (compute-1, -3 in cell1; compute-2, -4 in cell2) and their BMCs.

    Skipped when nova is not importable (the default tox env); install the
    ``realnova`` extra (``tox -e realnova``) to run it.
    """
    if not nova_available():
        pytest.skip(NO_NOVA)
    cloud = RealNovaCloud(str(tmp_path_factory.mktemp('realnova')),
                          hosts=4, cells=2,
                          service_down_time=SERVICE_DOWN_TIME)
    cloud.start()
    try:
        yield cloud
    finally:
        cloud.close()
