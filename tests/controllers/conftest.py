"""The controllers tier: three network namespaces, a 3-member TLS etcd.

Needs root, iproute2 and an etcd binary. Outside CI a missing piece skips
these tests with the reason; under ``CI=true`` it fails them, so that a CI
that silently cannot run them never looks green.
"""
from __future__ import annotations

import os
import typing as t

import pytest

from freezer_dr.demo import etcd_server
from tests import controller_deployment as deployment
from tests import controller_site
from tests import netns
from tests.fixtures.factory import started_in_dirs


def _unavailable(reason: str) -> t.NoReturn:
    if os.environ.get('CI') == 'true':
        pytest.fail(f'controllers tier cannot run under CI: {reason}')
    pytest.skip(reason)


def _require_namespaces() -> None:
    try:
        netns.probe()
        etcd_server.find_etcd_binary()
    except (netns.NetnsUnavailable, etcd_server.EtcdNotFound) as error:
        _unavailable(str(error))


@pytest.fixture
def controllers() -> t.Iterator[netns.Controllers]:
    _require_namespaces()
    topology = netns.Controllers(3).create()
    try:
        yield topology
    finally:
        topology.close()


@pytest.fixture
def etcd(controllers, tmp_path):
    cluster = deployment.etcd_cluster(controllers, str(tmp_path / 'etcd'))
    try:
        yield cluster.start()
    finally:
        cluster.close()


@pytest.fixture
def deploy(controllers, etcd, tmp_path):
    """``deploy(env={index: {...}})`` -> started replicas, one per
    controller; always stopped at teardown (before the namespaces go)."""
    def build(workdir: str, **kwargs: t.Any
              ) -> deployment.ControllerReplicas:
        return deployment.ControllerReplicas(workdir, controllers, etcd,
                                             **kwargs)

    with started_in_dirs(tmp_path, 'replicas', build) as make:
        yield make


@pytest.fixture(scope='module')
def site(tmp_path_factory) -> t.Iterator[controller_site.Site]:
    """A whole site, shared by a module's tests: controllers, TLS etcd,
    the simulated cloud in its own namespace, one replica each."""
    _require_namespaces()
    built = controller_site.Site(str(tmp_path_factory.mktemp('site')))
    built.start()
    try:
        yield built
    finally:
        built.close()
