"""Operator requests the leader acts on: retry a recovery, fence confirmed.

``freezer-dr-manage`` writes requests under ``requests/<kind>/<host>``;
the leader reads them each cycle, for hosts no runner owns right now.

- ``retry`` reopens a failed recovery from fencing (its users were mailed
  already: the outcome goes to admins).
- ``cancel`` closes a recovery that has not fenced its host (confirmed or
  held, no verified power-off): it ends failed with the operator's reason,
  and admins are told. Past that point it is refused.
- ``fence-confirmed`` names a live recovery. It is accepted into that
  recovery (``operator_confirmation``) only if it was written after the
  record's last change (etcd revisions, no clocks), so it is newer than
  every ON reading and failed fencing attempt the record holds: those
  drop the confirmation in the same checkpoint (S1). A held recovery then
  tries fencing again at once.
"""
from __future__ import annotations

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.engine import transitions
from freezer_dr.model import InstanceState
from freezer_dr.model import RecoveryRecord
from freezer_dr.model import Step
from freezer_dr.model import now

LOG = logging.getLogger(__name__)


def handle(store, live: dict[str, RecoveryRecord], owned: set[str]
           ) -> list[tuple[str, str]]:
    """Act on pending operator requests; ``live`` is updated in place.

    Hosts in ``owned`` have a runner that owns their record right now:
    their requests wait for a later cycle. Returned for the admins, as
    (alert kind, sentence): requests that cannot be read (a newer schema,
    a hand-made key), removed and never acted on, and fence confirmations
    refused, so that the operator hears to confirm again.
    """
    told: list[tuple[str, str]] = []
    for kind, act in (('retry', _retry), ('cancel', _cancel),
                      ('fence-confirmed', _confirm)):
        unreadable: dict[str, str] = {}
        requests = store.requests(kind, unreadable)
        for host, error in sorted(unreadable.items()):
            store.clear_request(kind, host)
            said = f'unreadable {kind} request for {host} removed ({error})'
            LOG.error('%s', said)
            told.append(('request_unreadable', said))
        for host, data in requests.items():
            if host in owned:
                continue        # its runner owns the record right now
            try:
                refused = act(store, host, data, live)
            except exceptions.StaleRecord as error:
                LOG.info('request %s for %s: %s (next cycle)', kind,
                         host, error)
                continue
            if refused:
                LOG.warning('%s', refused)
                told.append(('confirmation_ignored', refused))
    return told


def _retry(store, host: str, data: dict,
           live: dict[str, RecoveryRecord]) -> None:
    record = live.get(host)
    if record is None:
        record = store.find(data.get('recovery_id', ''))
        if record is not None and record.step == Step.FAILED:
            record = _reopen(store, record)
            live[host] = record
    elif record.step == Step.HELD and record.next_attempt_at > 0:
        record.next_attempt_at = 0.0       # retry fencing now
        store.put_recovery(record)
    store.clear_request('retry', host)


def _cancel(store, host: str, data: dict,
            live: dict[str, RecoveryRecord]) -> None:
    record = live.get(host)
    if record is None or record.id != data.get('recovery_id'):
        LOG.warning('cancel of recovery %s (%s): not live, ignored',
                    data.get('recovery_id'), host)
    elif record.step not in (Step.CONFIRMED, Step.HELD) or (
            record.fence or {}).get('success'):
        LOG.warning('cancel of recovery %s refused: it is at %s, past a '
                    'verified power-off or fencing', record.id,
                    record.step.value)
    else:
        by, why = data.get('by'), data.get('reason') or 'no reason given'
        transitions.check(record.step, Step.NOTIFYING, 'operator_cancel')
        record.reason = f'cancelled by {by}: {why}'
        record.cancelled = {'by': by, 'reason': why, 'at': now()}
        record.step = Step.NOTIFYING
        record.steps.append({'step': Step.NOTIFYING.value, 'at': now(),
                             'note': record.reason,
                             'condition': 'operator_cancel'})
        store.put_recovery(record)
        LOG.info('recovery %s of %s cancelled by %s', record.id, host, by)
    store.clear_request('cancel', host)


def _confirm(store, host: str, data: dict,
             live: dict[str, RecoveryRecord]) -> str | None:
    """A refused confirmation returns why, for the admins."""
    record = live.get(host)
    revision = data.get('revision') or 0
    refused = None
    if record is None or data.get('recovery_id') != record.id:
        LOG.warning('fence confirmation of %s names recovery %s, which is '
                    'not live: ignored', host, data.get('recovery_id'))
    elif record.revision is not None and revision <= record.revision:
        refused = (f'fence confirmation of {host} by {data.get("by")} for '
                   f'recovery {record.id} (etcd revision {revision}) was '
                   f'written before the recovery last changed (a fencing '
                   f'attempt): ignored; check the host, then confirm again')
    elif record.step == Step.FENCING:
        # No runner owns it, so a fencing attempt was cut short (a
        # takeover, a step error): what it read before it stopped is not
        # in the record, and may be an ON reading newer than this (S1).
        refused = (f'fence confirmation of {host} by {data.get("by")} for '
                   f'recovery {record.id} (etcd revision {revision}) came '
                   f'while a fencing attempt was cut short: ignored; '
                   f'confirm again once the recovery is held')
    elif record.step in (Step.CONFIRMED, Step.HELD):
        record.operator_confirmation = {
            'by': data.get('by'), 'at': now(), 'revision': revision}
        record.next_attempt_at = 0.0       # fence now
        store.put_recovery(record)
        LOG.info('fence confirmation of %s by %s accepted for recovery %s',
                 host, data.get('by'), record.id)
    store.clear_request('fence-confirmed', host)
    return refused


def _reopen(store, record: RecoveryRecord) -> RecoveryRecord:
    """A failed recovery, back to fencing with its failures reset."""
    transitions.check(record.step, Step.HELD, 'operator_retry')
    for inst in record.instances:
        if inst.state == InstanceState.FAILED:
            inst.state, inst.attempts = InstanceState.PENDING, 0
    record.step, record.finished_at = Step.HELD, None
    record.failed_step, record.next_attempt_at = None, 0.0
    record.reason = 'retry requested by operator'
    record.reopened += 1
    record.reopened_at = now()
    record.operator_confirmation = None    # confirmations do not carry over
    record.steps.append({'step': Step.HELD.value, 'at': now(),
                         'note': record.reason,
                         'condition': 'operator_retry'})
    store.put_recovery(record)
    return record
