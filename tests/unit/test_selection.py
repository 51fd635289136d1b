"""Which instances of a failed host are evacuated, and in what order."""
import pytest

from freezer_dr.engine import selection
from freezer_dr.model import Instance

KEY, TAG = 'HA_Enabled', 'ha-enabled'


def server(name, status='ACTIVE', metadata=None, tags=None):
    return Instance(id=f'id-{name}', name=name, project_id='p', user_id='u',
                    status=status, host='c1', metadata=metadata or {},
                    tags=tags or [])


def names(instances):
    return [i.name for i in instances]


@pytest.mark.parametrize('value', ['true', 'True', 'TRUE', '1', 'yes'])
def test_metadata_true_values_mark_an_instance(value):
    assert selection.is_marked(server('a', metadata={KEY: value}), KEY, TAG)


@pytest.mark.parametrize('value', ['false', 'False', '0', 'no', ''])
def test_metadata_false_values_do_not_mark_an_instance(value):
    assert not selection.is_marked(server('a', metadata={KEY: value}),
                                   KEY, TAG)


def test_tag_marks_an_instance():
    assert selection.is_marked(server('a', tags=['x', TAG]), KEY, TAG)
    assert not selection.is_marked(server('a', tags=['x']), KEY, TAG)


def test_empty_key_and_tag_disable_marking():
    inst = server('a', metadata={'': 'true', KEY: 'true'}, tags=[''])
    assert not selection.is_marked(inst, '', '')
    assert not selection.is_marked(inst, None, None)


def test_all_mode_puts_marked_first_and_keeps_order_within_groups():
    servers = [server('plain1'), server('tagged', tags=[TAG]),
               server('plain2'), server('meta', metadata={KEY: 'true'})]
    chosen = selection.select(servers, 'all', KEY, TAG, include_error=False)
    assert names(chosen) == ['tagged', 'meta', 'plain1', 'plain2']


def test_marked_mode_keeps_only_marked_instances():
    servers = [server('plain'), server('meta', metadata={KEY: 'True'}),
               server('tagged', tags=[TAG])]
    chosen = selection.select(servers, 'marked', KEY, TAG, False)
    assert names(chosen) == ['meta', 'tagged']


def test_error_instances_are_skipped_unless_included():
    servers = [server('broken', status='ERROR', tags=[TAG]),
               server('ok'), server('off', status='SHUTOFF')]
    assert names(selection.select(servers, 'all', KEY, TAG, False)) == [
        'ok', 'off']
    assert names(selection.select(servers, 'all', KEY, TAG, True)) == [
        'broken', 'ok', 'off']


def test_skip_reason_says_why():
    assert selection.skip_reason(server('a'), 'marked', False, False) == (
        'not marked for HA')
    assert selection.skip_reason(server('a', status='ERROR'), 'all', True,
                                 False) == 'in ERROR before the failure'
    assert selection.skip_reason(server('a'), 'all', False, False) is None


def test_unknown_selection_mode_is_rejected():
    with pytest.raises(ValueError, match='unknown selection'):
        selection.select([server('a')], 'some', KEY, TAG, False)


def test_no_instances_selects_nothing():
    assert selection.select([], 'all', KEY, TAG, False) == []
