"""Judging one evacuation from the server as it is now."""
import pytest

from freezer_dr.engine import tracking
from freezer_dr.model import Instance
from freezer_dr.model import InstanceRecord

SRC = 'compute-1'


def now(status='ACTIVE', host='compute-2', task_state=None):
    return Instance(id='i1', name='vm', project_id='p', user_id='u',
                    status=status, host=host, task_state=task_state)


def before(original='ACTIVE'):
    return {'id': 'i1', 'original_status': original}


@pytest.mark.parametrize('status', ['ACTIVE', 'SHUTOFF'])
def test_settled_on_another_host_is_done(status):
    assert tracking.classify(before(), now(status), SRC) == 'done'


def test_active_server_ending_shutoff_is_still_done():
    # Microversion >= 2.95: evacuated servers end SHUTOFF; power is
    # restored separately.
    verdict, reason = tracking.explain(before('ACTIVE'), now('SHUTOFF'), SRC)
    assert verdict == 'done'
    assert 'was ACTIVE' in reason


def test_rebuilding_anywhere_is_in_progress():
    for host in (SRC, 'compute-2'):
        assert tracking.classify(before(), now('ACTIVE', host, 'rebuilding'),
                                 SRC) == 'in_progress'


def test_error_with_a_task_is_still_in_progress():
    assert tracking.classify(before(), now('ERROR', 'compute-2',
                                           'rebuild_spawning'),
                             SRC) == 'in_progress'


def test_error_on_new_host_is_failed():
    verdict, reason = tracking.explain(before(), now('ERROR'), SRC)
    assert verdict == 'failed'
    assert 'compute-2' in reason


def test_error_back_on_source_is_failed():
    verdict, reason = tracking.explain(before(), now('ERROR', SRC), SRC)
    assert verdict == 'failed'
    assert 'not carried out' in reason


def test_untouched_on_source_is_in_progress_without_migration_news():
    assert tracking.classify(before(), now('ACTIVE', SRC), SRC) == (
        'in_progress')


def test_untouched_on_source_with_failed_migration_is_failed():
    for status in ('failed', 'error'):
        assert tracking.classify(before(), now('ACTIVE', SRC), SRC,
                                 migration={'status': status}) == 'failed'
    assert tracking.classify(before(), now('ACTIVE', SRC), SRC,
                             migration={'status': 'running'}) == (
        'in_progress')


def test_moved_but_not_settled_is_in_progress():
    assert tracking.classify(before(), now('PAUSED'), SRC) == 'in_progress'


def test_deleted_server_is_failed():
    assert tracking.classify(before(), now('DELETED'), SRC) == 'failed'


def test_instance_record_objects_are_accepted():
    record = InstanceRecord(id='i1', name='vm', project_id='p',
                            original_status='SHUTOFF')
    assert tracking.classify(record, now('SHUTOFF'), SRC) == 'done'


@pytest.mark.parametrize('original,status,expected', [
    ('ACTIVE', 'SHUTOFF', True),
    ('SHUTOFF', 'ACTIVE', False),
    ('ACTIVE', 'ACTIVE', None),
    ('SHUTOFF', 'SHUTOFF', None),
    ('ERROR', 'ACTIVE', None),
    ('ACTIVE', 'ERROR', None),
])
def test_power_to_restore(original, status, expected):
    assert tracking.power_to_restore(original, now(status)) is expected


def test_no_power_change_while_a_task_runs():
    assert tracking.power_to_restore(
        'ACTIVE', now('SHUTOFF', task_state='powering-on')) is None


def test_error_instance_untouched_on_source_waits_for_migration_news():
    # An instance that was ERROR before looks the same before and after a
    # failed evacuation: only its migration tells.
    still = now('ERROR', SRC)
    assert tracking.classify(before('ERROR'), still, SRC) == 'in_progress'
    assert tracking.classify(before('ERROR'), still, SRC,
                             migration={'status': 'error'}) == 'failed'
    assert tracking.classify(before('ERROR'), now('ACTIVE'), SRC) == 'done'
