"""Who may lead when the leader is blind: decisions from member records.

Each replica publishes in its member record when it last looked at the
cloud (``cloud_checked_at``) and when it last saw it well
(``cloud_seen_at``). A member *sees* when its last look was good and is
fresh by our clock. A blind leader hands over only to a member that sees;
a blind standby leaves a free lease to a member that sees (for a bounded
time, so that a silent one cannot keep the cluster leaderless).
"""
from __future__ import annotations

import typing as t


def sees(member: dict[str, t.Any], now: float, freshness: float) -> bool:
    """Whether ``member``'s record says it saw the cloud at its last look,
    at most ``freshness`` seconds ago (a clock ahead by more is not
    believed either)."""
    seen = member.get('cloud_seen_at')
    checked = member.get('cloud_checked_at')
    if not isinstance(seen, (int, float)) or \
            not isinstance(checked, (int, float)):
        return False
    if member.get('cloud_error') or seen < checked:
        return False
    return abs(now - checked) <= freshness


def seeing_members(members: t.Iterable[dict[str, t.Any]], me: str,
                   now: float, freshness: float) -> list[str]:
    """Ids of the other members that see the cloud, freshest look first."""
    found = [m for m in members
             if m.get('member_id') != me and sees(m, now, freshness)]
    found.sort(key=lambda m: -float(m['cloud_checked_at']))
    return [str(m['member_id']) for m in found]


def handover_targets(blind_for: float, after: float,
                     members: t.Iterable[dict[str, t.Any]], me: str,
                     now: float, freshness: float) -> list[str]:
    """The members a leader blind for ``blind_for`` s may hand over to.

    Empty while it has been blind for less than ``after`` seconds, or when
    no other member sees the cloud (never hand over to one blind too).
    Whichever of them takes the released lease first leads.
    """
    if blind_for < after:
        return []
    return seeing_members(members, me, now, freshness)
