"""The ground-truth invariant checks catch what they are meant to catch."""
from __future__ import annotations

from freezer_dr.model import InstanceRecord
from freezer_dr.model import RecoveryRecord
from tests import invariants
from tests.invariants import Mail

ADMIN = 'admin@example.org'


def reading(t: float, power: str, command: str = 'status',
            host: str = 'c1', result: str = 'ok') -> dict:
    return {'t': t, 'host': host, 'command': command, 'result': result,
            'power_after': power}


def evacuation(created: float, instance: str = 'vm-1',
               status: str = 'done', source: str = 'c1') -> dict:
    return {'instance': instance, 'source': source, 'dest': 'c2',
            'status': status, 'created': created}


def test_s1_holds_when_an_off_reading_precedes_every_evacuation():
    log = [reading(10, 'on'), reading(11, 'off', 'off'), reading(11.2, 'off')]
    assert invariants.check_fenced_before_evacuated(
        [evacuation(12)], log, 'c1', since=5) == []


def test_s1_evacuation_without_or_before_an_off():
    assert 'never showed it off' in invariants.check_fenced_before_evacuated(
        [evacuation(12)], [reading(10, 'on')], 'c1', since=5)[0]
    late = invariants.check_fenced_before_evacuated(
        [evacuation(12)], [reading(13, 'off', 'off')], 'c1', since=5)
    assert 'off only 1.00 s later' in late[0]


def test_s1_an_on_reading_after_the_off_makes_it_stale():
    log = [reading(11, 'off', 'off'), reading(11.5, 'on'),
           reading(12.5, 'off')]
    (problem,) = invariants.check_fenced_before_evacuated(
        [evacuation(12), evacuation(13, 'vm-2')], log, 'c1', since=5)
    assert problem.startswith('S1: vm-1') and 'read it ON' in problem


def test_s1_a_stuck_bmc_accepting_off_is_no_fence():
    log = [reading(11, 'on', 'off')]          # "ok", but still on
    assert invariants.check_fenced_before_evacuated(
        [evacuation(12)], log, 'c1', since=5)


def test_s1_ignores_other_hosts_and_earlier_runs():
    log = [reading(11, 'off', 'off', host='c2')]
    assert invariants.check_fenced_before_evacuated(
        [evacuation(4), evacuation(12, source='c2')], log, 'c1',
        since=5) == []


def test_confirmation_window_flags_early_power_commands_and_evacuations():
    log = [reading(7, 'off', 'off'), reading(9, 'off', 'off')]
    problems = invariants.check_confirmation_window(
        [evacuation(7.5), evacuation(9.5, 'vm-2')], log, 'c1', since=5,
        not_before=8)
    assert len(problems) == 2
    assert all(p.startswith('WINDOW') for p in problems)


def test_s3_at_most_one_good_evacuation_failed_ones_aside():
    migs = [evacuation(10, status='failed'), evacuation(11),
            evacuation(12, 'vm-2'), evacuation(13, 'vm-2', 'accepted')]
    (problem,) = invariants.check_one_evacuation_each(
        migs, 'c1', 5, ['vm-1', 'vm-2', 'vm-3'], exactly=False)
    assert 'vm-2' in problem
    exact = invariants.check_one_evacuation_each(
        migs, 'c1', 5, ['vm-1', 'vm-2', 'vm-3'], exactly=True)
    assert {p.split()[2] for p in exact} == {'vm-2', 'vm-3'}


def mail(who: str, event: str = 'recovered', mid: str = '<1>',
         rid: str = 'r1') -> Mail:
    return Mail(who, f'{rid}:{event}:email', mid, 'subject')


def record(step: str, reason: str | None = 'ok', **kw) -> RecoveryRecord:
    return RecoveryRecord(id='r1', host='c1', step=step, reason=reason, **kw)


def test_s4_terminal_needs_reason_admin_summary_and_users():
    mails = [mail(ADMIN), mail('u@x', mid='<2>')]
    assert invariants.check_ended(record('done'), mails, [ADMIN],
                                  ['u@x']) == []
    assert invariants.check_ended(record('done', None), mails, [ADMIN])
    assert invariants.check_ended(record('done'), mails[1:], [ADMIN])
    assert invariants.check_ended(record('done'), mails, [ADMIN],
                                  ['u@x', 'v@x'])
    assert invariants.check_ended(record('failed'), mails, [ADMIN])
    assert invariants.check_ended(
        record('failed', failed_step='evacuating'), mails, [ADMIN]) == []


def test_s4_held_needs_an_admin_alert_and_stuck_is_a_violation():
    assert invariants.check_ended(record('held'), [], [ADMIN])
    assert invariants.check_ended(
        record('held'), [mail(ADMIN, 'fence_failed')], [ADMIN]) == []
    assert 'stuck' in invariants.check_ended(record('evacuating'), [],
                                             [ADMIN])[0]
    assert invariants.check_ended(None, [], [ADMIN])


def test_one_mail_per_person_per_recovery_resends_folded():
    same = [mail('u@x'), mail('u@x'), mail(ADMIN),
            mail(ADMIN, 'fence_failed', '<3>')]
    assert invariants.check_mail_once(same, [ADMIN]) == []
    assert invariants.resent(same) == 1
    twice = [mail('u@x', mid='<1>'), mail('u@x', 'retry-1', '<2>')]
    assert invariants.check_mail_once(twice, [ADMIN])
    admin_twice = [mail(ADMIN, mid='<1>'), mail(ADMIN, mid='<2>')]
    assert invariants.check_mail_once(admin_twice, [ADMIN])


def test_power_state_restored_or_declared():
    before = {'a': 'ACTIVE', 'b': 'SHUTOFF', 'c': 'ACTIVE'}
    after = {'a': {'status': 'ACTIVE'}, 'b': {'status': 'ACTIVE'},
             'c': {'status': 'SHUTOFF'}}
    rec = record('done', instances=[
        InstanceRecord('c', 'c', 'p', error='evacuated, but power state '
                                            'not restored: 500')])
    (problem,) = invariants.check_power_restored(before, after,
                                                 ['a', 'b', 'c'], rec)
    assert problem.startswith('POWER: b')
    assert invariants.check_power_restored(
        before, after, ['b'], rec, also_fine={'b': 'ACTIVE'}) == []
