"""The e2e tier's fixtures: clusters of replicas, closed after the test."""
from __future__ import annotations

import pytest

from tests.e2e.cluster_checks import cluster_factory


@pytest.fixture
def make_cluster(tmp_path):
    """``make(...)`` -> a started cluster (see ``cluster_factory``)."""
    made = []
    yield cluster_factory(tmp_path, made)
    for cluster in made:
        cluster.close()
