"""A blind replica steps aside for one that sees the cloud.

The campaign rule: a standby that does not see the cloud itself (its last
look failed, is stale, or predates its own blind handover) does not take a
free lease while another member's record says it sees; it waits at most
``defer_limit`` seconds of free lease for that member, then campaigns
anyway (a leader that is blind still holds the single-actor role and
fails closed). A standby that sees campaigns as usual. The handover: a
leader blind for ``[engine] blind_handover_after`` seconds, with a
standby that sees, stops its loop and releases the lease; the watch wakes
the standbys at once, the seeing one takes the lease, the blind ones
(the old leader among them) defer to it.
"""
from __future__ import annotations

import time
import typing as t

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.ha import etcd as ha_etcd
from freezer_dr.ha import handover

LOG = logging.getLogger(__name__)


class BlindnessPolicy:
    """Campaign deferral and handover decisions of one replica."""

    def __init__(self, member_id: str, sight: t.Any, membership: t.Any,
                 lease: t.Any, handover_after: float,
                 defer_limit: float) -> None:
        self.member_id = member_id
        self.sight = sight
        self.membership = membership
        self.lease = lease
        self.handover_after = handover_after
        self.defer_limit = defer_limit
        self.freshness = 3 * sight.interval
        self.handed_over_at: float | None = None   # wall clock
        self._deferring_since: float | None = None  # monotonic
        self._said: str | None = None

    def i_see(self) -> bool:
        """Whether this replica sees the cloud, since its last handover."""
        if not self.sight.sees:
            return False
        handed = self.handed_over_at
        return handed is None or (self.sight.seen_at or 0) > handed

    def may_campaign(self) -> bool:
        """False while a blind standby leaves a free lease to one that sees.

        Raises StoreUnavailable when etcd cannot tell.
        """
        if self.i_see() or self.lease.lease_id is not None:
            self._deferring_since = None    # (a held lease: win it back)
            return True
        if ha_etcd.get_key(self.lease.client, self.lease.leader_key):
            self._deferring_since = None
            return True         # somebody leads: the attempt is a read
        seeing = handover.seeing_members(self.membership.members(),
                                         self.member_id, time.time(),
                                         self.freshness)
        if not seeing:
            self._deferring_since = None
            return True
        now = time.monotonic()
        if self._deferring_since is None:
            self._deferring_since = now
            LOG.info('%s is blind: leaving the free lease to %s, which sees '
                     'the cloud', self.member_id, ', '.join(seeing))
        if now - self._deferring_since > self.defer_limit:
            self._say('late', f'{seeing[0]} did not take the lease in '
                      f'{self.defer_limit:g} s: campaigning although blind')
            return True
        return False

    def check_leader(self, blind_for: float) -> list[str]:
        """The members to hand over to now (leader thread); [] to stay."""
        if blind_for < self.handover_after:
            self._said = None
            return []
        try:
            members = self.membership.members()
        except exceptions.StoreUnavailable as error:
            LOG.debug('cannot read the members: %s', error)
            return []
        target = handover.handover_targets(
            blind_for, self.handover_after, members, self.member_id,
            time.time(), self.freshness)
        if not target:
            self._say('alone', f'blind for {blind_for:.0f} s, but no '
                      f'standby sees the cloud either: keeping the lease')
        return target

    def handed_over(self) -> None:
        """Remember that we gave up the lease for being blind."""
        self.handed_over_at = time.time()
        self._said = None

    def _say(self, key: str, text: str) -> None:
        """Log ``text`` once per change of situation ``key``."""
        if key != self._said:
            LOG.warning('%s: %s', self.member_id, text)
            self._said = key
