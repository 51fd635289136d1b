"""Reading Nova's list entries: any JSON in, reasons out, never raises.

A seeded generator of arbitrary JSON values (and near-miss service
entries) stands in for whatever a future Nova, a proxy or a bug may send.
"""
import random

import pytest

from freezer_dr.monitors import nova_answers as answers

SCALARS = [None, True, False, 0, 1, -3, 2.5, '', 'up', 'down', 'UNKNOWN',
           'enabled', 'disabled', 'nova-compute', 'nova-scheduler', 'c1',
           '2026-11-26T10:00:00.000000', 'yesterday', '   ']
KEYS = ['binary', 'host', 'state', 'status', 'forced_down', 'updated_at',
        'disabled_reason', 'id', 'service', 'hypervisor_hostname', 'alive',
        'zone']


def arbitrary(rng: random.Random, depth: int = 0):
    """Any JSON value, biased towards Nova-like keys and values."""
    kind = rng.randrange(4 if depth < 3 else 1)
    if kind == 0:
        return rng.choice(SCALARS)
    if kind == 1:
        return [arbitrary(rng, depth + 1) for _ in range(rng.randrange(3))]
    return {rng.choice(KEYS): arbitrary(rng, depth + 1)
            for _ in range(rng.randrange(6))}


def near_service(rng: random.Random) -> dict:
    """A well-formed compute service entry with a few fields broken."""
    entry = {'binary': 'nova-compute', 'host': f'c{rng.randrange(5)}',
             'state': 'up', 'status': 'enabled', 'forced_down': False,
             'updated_at': '2026-11-26T10:00:00.000000',
             'disabled_reason': None}
    for _ in range(rng.randrange(3)):
        key = rng.choice(list(entry))
        if rng.random() < 0.3:
            del entry[key]
        else:
            entry[key] = arbitrary(rng, 2)
    return entry


@pytest.mark.parametrize('seed', range(40))
def test_any_service_list_is_read_without_raising(seed):
    rng = random.Random(seed)
    items = [near_service(rng) if rng.random() < 0.6 else arbitrary(rng)
             for _ in range(rng.randrange(1, 12))]
    entries, unnamed = answers.compute_services(items)
    hosts = [e.host for e in entries]
    assert len(hosts) == len(set(hosts))          # one entry per host
    for entry in entries:
        assert isinstance(entry.host, str) and entry.host.strip()
        if entry.unknown is None:
            assert entry.state in ('up', 'down')
            assert entry.status in ('enabled', 'disabled')
            assert isinstance(entry.forced_down, bool)
        else:
            assert entry.state is None and entry.unknown
    expected = sum(1 for i in items if not isinstance(i, dict)
                   or (not _other_binary(i) and not _named(i)))
    assert len(unnamed) == expected


def _other_binary(item: dict) -> bool:
    binary = item.get('binary', 'nova-compute')
    return isinstance(binary, str) and binary != 'nova-compute'


def _named(item: dict) -> bool:
    host = item.get('host')
    return isinstance(host, str) and bool(host.strip())


@pytest.mark.parametrize('seed', range(40))
@pytest.mark.parametrize('view', [answers.hypervisor_view,
                                  answers.agent_view])
def test_any_extra_source_list_is_read_without_raising(seed, view):
    rng = random.Random(seed)
    items = [arbitrary(rng) for _ in range(rng.randrange(1, 12))]
    seen = view(items)
    assert set(seen.votes) == set(seen.values)
    for host, vote in seen.votes.items():
        assert vote in (True, False, None)
        assert (vote is None) == (host in seen.reasons)
