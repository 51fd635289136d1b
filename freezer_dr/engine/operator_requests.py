"""Operator requests the leader acts on: retry a recovery, fence confirmed.

``freezer-dr-manage`` writes requests under ``requests/<kind>/<host>``;
the leader reads them each cycle. A retry reopens a failed recovery from
fencing (its users were mailed already: the outcome goes to admins); a
manual fence confirmation makes a held recovery try fencing again now
(the confirmation itself stays: the manual fencer reads it).
"""
from __future__ import annotations

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.engine.model import InstanceState
from freezer_dr.engine.model import RecoveryRecord
from freezer_dr.engine.model import Step
from freezer_dr.engine.model import now

LOG = logging.getLogger(__name__)


def handle(store, live: dict[str, RecoveryRecord], owned: set[str]) -> None:
    """Act on pending operator requests; ``live`` is updated in place.

    Hosts in ``owned`` have a runner that owns their record right now:
    their requests wait for a later cycle.
    """
    for kind in ('retry', 'fence-confirmed'):
        for host, data in store.requests(kind).items():
            if host in owned:
                continue        # its runner owns the record right now
            try:
                _handle_one(store, kind, host, data, live)
            except exceptions.StaleRecord as error:
                LOG.info('request %s for %s: %s (next cycle)', kind,
                         host, error)


def _handle_one(store, kind: str, host: str, data: dict,
                live: dict[str, RecoveryRecord]) -> None:
    record = live.get(host)
    if kind == 'retry' and record is None:
        record = store.find(data.get('recovery_id', ''))
        if record is not None and record.step == Step.FAILED.value:
            record = _reopen(store, record)
            live[host] = record
    if (record is not None and record.step == Step.HELD.value
            and record.next_attempt_at > 0):
        record.next_attempt_at = 0.0       # retry fencing now
        store.put_recovery(record)
    if kind == 'retry':   # confirmations stay: the fencer reads them
        store.clear_request(kind, host)


def _reopen(store, record: RecoveryRecord) -> RecoveryRecord:
    """A failed recovery, back to fencing with its failures reset."""
    for inst in record.instances:
        if inst.state == InstanceState.FAILED.value:
            inst.state, inst.attempts = InstanceState.PENDING.value, 0
    record.step, record.finished_at = Step.HELD.value, None
    record.failed_step, record.next_attempt_at = None, 0.0
    record.reason = 'retry requested by operator'
    record.reopened += 1
    record.reopened_at = now()    # older manual confirmations expire
    record.steps.append({'step': Step.HELD.value, 'at': now(),
                         'note': record.reason})
    store.put_recovery(record)
    return record
