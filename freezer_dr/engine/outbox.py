"""A recovery's outbox: admin alerts queued with the change that caused
them and removed once delivered.

An alert is queued in the same checkpoint as its transition, so a
takeover delivers what its predecessor could not; one per kind per
recovery (and operator retry), except those in :data:`REPEATED`.
"""
from __future__ import annotations

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.model import RecoveryRecord

LOG = logging.getLogger(__name__)

#: alerts worth sending on every occurrence
REPEATED = ('power_on',)


def queue(record: RecoveryRecord, kind: str, summary: str) -> None:
    """Add an alert to the record's outbox (the caller checkpoints)."""
    key = f'{kind}-r{record.reopened}'
    if kind in REPEATED:
        key += f'-{len(record.steps)}'
    if all(item['key'] != key for item in record.outbox):
        record.outbox.append({'key': key, 'kind': kind, 'summary': summary})


def flush(runner, quick: bool = True) -> None:
    """Deliver queued alerts; each leaves the outbox once delivered.

    ``quick``: one delivery round each, and what fails stays queued for a
    later flush (the recovery goes on); otherwise every round, and
    NotifyFailed when something is still undelivered. One alert that
    cannot be sent never holds the others back.
    """
    record = runner.record
    undelivered = []
    for item in list(record.outbox):
        try:
            runner.ctx.notification.alert(
                runner, item['kind'], item['summary'], key=item['key'],
                rounds=1 if quick else None)
        except exceptions.LeadershipLost:
            raise
        except exceptions.NotifyFailed as error:
            LOG.warning('recovery %s: alert %s not delivered yet: %s',
                        record.id, item['key'], error)
            undelivered.append(item['key'])
            continue
        record.outbox.remove(item)
        runner.save()
    if undelivered and not quick:
        raise exceptions.NotifyFailed(
            f'recovery {record.id}: alerts not delivered: '
            f'{", ".join(undelivered)}')
