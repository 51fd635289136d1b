"""The per-replica HTTP endpoint, over real HTTP."""
from __future__ import annotations

import typing as t

import pytest
import requests

from freezer_dr import api
from freezer_dr import metrics


class FakeReplica:
    """A replica whose leadership and health the test sets."""

    def __init__(self) -> None:
        self.leading = False
        self.healthy = (True, 'standby')

    def leader_status(self) -> dict[str, t.Any]:
        return {'member_id': 'r1', 'leader': self.leading,
                'epoch': 7 if self.leading else None,
                'lease_remaining': 4.5 if self.leading else 0.0}

    def health(self) -> tuple[bool, str]:
        return self.healthy


@pytest.fixture
def served():
    replica = FakeReplica()
    registry = metrics.Registry()
    server = api.ApiServer('127.0.0.1', 0, replica, registry).start()
    host, port = server.address
    try:
        yield replica, registry, f'http://{host}:{port}'
    finally:
        server.stop()


def test_leader_answers_503_for_a_standby_and_200_for_the_leader(served):
    replica, _registry, base = served
    resp = requests.get(base + '/leader', timeout=5)
    assert resp.status_code == 503
    assert resp.json() == {'member_id': 'r1', 'leader': False,
                           'epoch': None, 'lease_remaining': 0.0}
    replica.leading = True
    resp = requests.get(base + '/leader', timeout=5)
    assert resp.status_code == 200
    assert resp.headers['Content-Type'] == 'application/json'
    assert resp.json()['epoch'] == 7


def test_healthz_follows_the_replica_health(served):
    replica, _registry, base = served
    assert requests.get(base + '/healthz', timeout=5).status_code == 200
    replica.healthy = (False, 'campaign thread stalled')
    resp = requests.get(base + '/healthz', timeout=5)
    assert resp.status_code == 503
    assert resp.json() == {'healthy': False,
                           'reason': 'campaign thread stalled'}


def test_metrics_are_served_in_prometheus_text_format(served):
    replica, registry, base = served
    registry.counter('freezer_dr_cycles_total', 'Cycles.').inc(3)
    registry.gauge('freezer_dr_leader', 'Leading.',
                   lambda: 1.0 if replica.leading else 0.0)
    replica.leading = True
    resp = requests.get(base + '/metrics', timeout=5)
    assert resp.status_code == 200
    assert resp.headers['Content-Type'].startswith('text/plain; version=0.0.4')
    assert '# TYPE freezer_dr_cycles_total counter\n' in resp.text
    assert '\nfreezer_dr_cycles_total 3.0\n' in resp.text
    assert '\nfreezer_dr_leader 1.0\n' in resp.text


def test_unknown_path_is_404(served):
    _replica, _registry, base = served
    assert requests.get(base + '/nope', timeout=5).status_code == 404
