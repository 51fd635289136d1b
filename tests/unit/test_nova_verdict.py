"""The nova monitor's down verdict from its sources' votes."""
import datetime

import pytest

from freezer_dr.monitors import nova

NOW = datetime.datetime(2026, 11, 26, 10, 0, 0, tzinfo=datetime.timezone.utc)


def test_service_rule_ignores_other_sources():
    assert nova.verdict('service', True, [False, False])
    assert not nova.verdict('service', False, [True, True])


def test_all_rule_needs_every_source_with_a_word():
    assert nova.verdict('all', True, [True, True])
    assert not nova.verdict('all', True, [True, False])
    assert not nova.verdict('all', False, [True, True])
    assert nova.verdict('all', True, [None, True])   # no word: no vote


def test_any_rule_needs_one_source():
    assert nova.verdict('any', False, [None, True])
    assert nova.verdict('any', True, [False])
    assert not nova.verdict('any', False, [False, None])


def test_unknown_rule_is_rejected():
    with pytest.raises(ValueError):
        nova.verdict('most', True, [])


def test_down_state_is_down_whatever_the_heartbeat():
    assert nova.service_down('down', NOW.isoformat(), 0, NOW)


def test_stale_heartbeat_counts_only_when_enabled():
    old = '2026-11-26T09:59:00.000000'   # naive = UTC, 60 s old
    assert not nova.service_down('up', old, 0, NOW)
    assert nova.service_down('up', old, 30, NOW)
    assert not nova.service_down('up', old, 90, NOW)


def test_unreadable_heartbeat_is_not_stale():
    assert not nova.service_down('up', None, 30, NOW)
    assert not nova.service_down('up', 'yesterday', 30, NOW)
