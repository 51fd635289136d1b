"""Who may lead when the leader is blind: decisions from member records."""
from freezer_dr.ha import handover

NOW = 1_000_000.0
FRESH = 30.0


def member(name, seen=None, checked=None, error=None):
    return {'member_id': name, 'cloud_seen_at': seen,
            'cloud_checked_at': checked, 'cloud_error': error}


def test_a_member_sees_when_its_last_look_was_good_and_fresh():
    assert handover.sees(member('a', NOW - 5, NOW - 5), NOW, FRESH)
    # its last look failed
    assert not handover.sees(member('a', NOW - 20, NOW - 5, 'refused'), NOW,
                             FRESH)
    assert not handover.sees(member('a', NOW - 20, NOW - 5), NOW, FRESH)
    # stale, never looked, or a clock far ahead of ours
    assert not handover.sees(member('a', NOW - 60, NOW - 60), NOW, FRESH)
    assert not handover.sees(member('a'), NOW, FRESH)
    assert not handover.sees(member('a', NOW + 600, NOW + 600), NOW, FRESH)
    assert not handover.sees({'member_id': 'old-version'}, NOW, FRESH)
    assert not handover.sees(member('a', 'x', 'y'), NOW, FRESH)


def test_handover_only_after_the_delay_and_only_to_one_that_sees():
    members = [member('me'), member('blind', NOW - 30, NOW - 2, 'refused'),
               member('sees', NOW - 3, NOW - 3),
               member('sees-fresher', NOW - 1, NOW - 1)]
    assert handover.handover_targets(29.9, 30, members, 'me', NOW,
                                     FRESH) == []
    assert handover.handover_targets(30, 30, members, 'me', NOW, FRESH) == \
        ['sees-fresher', 'sees']


def test_never_to_a_member_blind_too_nor_to_itself():
    members = [member('me', NOW - 1, NOW - 1),
               member('blind', None, NOW - 1, 'refused')]
    assert handover.handover_targets(300, 30, members, 'me', NOW,
                                     FRESH) == []
