"""The checkpoint store: recovery records, history, pause flag, requests.

Everything lives under ``/freezer-dr/<cluster>/`` as JSON with a schema
version. Leader writes are *fenced*: one etcd transaction that only applies
while the leader key's create revision equals our epoch, so a deposed
leader cannot write. Operator writes (pause, requests) are not fenced.

A rejected fenced write raises StaleEpoch (never retry it); an unreachable
etcd raises StoreUnavailable, after which the write may or may not have
landed: re-read before deciding. A value this version cannot read (corrupt
or from a newer schema) raises StoreValueError, a StoreUnavailable.
"""
from __future__ import annotations

import json
import time
import typing as t

from etcd3gw.client import Etcd3Client
from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.ha import etcd
from freezer_dr.ha.lease import LeaderLease
from freezer_dr.ha.lease import leader_key
from freezer_dr.model import RecoveryRecord

LOG = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MAX_TXN_OPS = 100       # etcd refuses more than 128 operations per txn


class StoreValueError(exceptions.StoreUnavailable):
    """A stored value cannot be read: corrupt, or from a newer schema."""


class CheckpointStore:
    """Reads and fenced writes of freezer-dr state in etcd."""

    def __init__(self, client: Etcd3Client, cluster: str,
                 lease: LeaderLease | None = None,
                 history_size: int = 200) -> None:
        self.client = client
        self.cluster = cluster
        self.lease = lease
        self.history_size = history_size
        self.prefix = f'/freezer-dr/{cluster}/'
        self.leader_key = leader_key(cluster)

    # -- fenced leader writes -------------------------------------------
    def put_recovery(self, record: RecoveryRecord, need: float = 0.0) -> None:
        """Checkpoint the live record of one host; sets ``record.epoch``.

        Compare-and-swap on top of the epoch: the write succeeds only if
        the live record is still the one this copy was read as (or, for a
        new record, if none exists), so an out-of-date copy can never
        overwrite a newer one (StaleRecord).
        """
        epoch = self._epoch(need)
        key = self._recovery_key(record.host)
        previous, record.epoch = record.epoch, epoch
        try:
            result = self._fenced(
                epoch, [etcd.put_op(key, _record_json(record))],
                f'checkpoint of {record.host} ({record.id})',
                self._unchanged(record, key))
        except BaseException:
            record.epoch = previous
            raise
        record.revision = etcd.txn_revision(result)

    def finish_recovery(self, record: RecoveryRecord) -> None:
        """Move a record to the history (one txn), then trim the history."""
        epoch = self._epoch()
        key = self._recovery_key(record.host)
        previous, record.epoch = record.epoch, epoch
        try:
            self._fenced(epoch, [
                etcd.put_op(self._history_key(record.id),
                            _record_json(record)),
                etcd.delete_op(key)],
                f'finish of {record.host} ({record.id})',
                self._unchanged(record, key))
        except BaseException:
            record.epoch = previous
            raise
        record.revision = None
        self._trim_history(epoch)

    @staticmethod
    def _unchanged(record: RecoveryRecord, key: str) -> dict:
        if record.revision is None:          # new (or reopened) record
            return etcd.compare_create(key, 0)
        return etcd.compare_mod(key, record.revision)

    def put_fenced(self, key: str, value: dict) -> None:
        """Fenced put of ``value`` at ``prefix + key``."""
        self._fenced(self._epoch(), [etcd.put_op(
            self._key(key), _value_json(value))], f'write of {key}')

    def delete_fenced(self, key: str) -> None:
        """Fenced delete of ``prefix + key``."""
        self._fenced(self._epoch(), [etcd.delete_op(self._key(key))],
                     f'delete of {key}')

    def clear_request(self, kind: str, host: str) -> None:
        """Fenced delete of an operator request once it is acted upon."""
        self.delete_fenced(self._request_key(kind, host))

    # -- reads (linearizable) --------------------------------------------
    def get_recovery(self, host: str) -> RecoveryRecord | None:
        found = etcd.get_key(self.client, self._recovery_key(host))
        return _load_record(found) if found else None

    def recoveries(self, unreadable: dict[str, str] | None = None
                   ) -> list[RecoveryRecord]:
        """Every live recovery, oldest first.

        With ``unreadable`` (a dict), a record that cannot be read (e.g.
        written by a newer schema) is reported there as host -> error and
        skipped, instead of failing the whole read.
        """
        records = []
        for item in etcd.get_prefix(self.client, self.prefix + 'recoveries/'):
            try:
                records.append(_load_record(item))
            except StoreValueError as error:
                if unreadable is None:
                    raise
                host = _key_text(item[1]).rsplit('/', 1)[-1]
                unreadable[host] = str(error)
        return records

    def history(self, limit: int = 20) -> list[RecoveryRecord]:
        """Finished recoveries, newest first."""
        return [_load_record(item) for item in etcd.get_prefix(
            self.client, self.prefix + 'history/', newest_first=True,
            limit=limit)]

    def find(self, recovery_id: str) -> RecoveryRecord | None:
        """A recovery by id, live or finished (unreadable ones skipped)."""
        for record in self.recoveries({}):
            if record.id == recovery_id:
                return record
        found = etcd.get_key(self.client, self._history_key(recovery_id))
        return _load_record(found) if found else None

    def get(self, key: str) -> dict | None:
        """The value at ``prefix + key``, or None."""
        found = etcd.get_key(self.client, self._key(key))
        return _load_value(found) if found else None

    def get_with_revision(self, key: str) -> tuple[dict | None, int]:
        """The value at ``prefix + key`` and its etcd mod revision
        (None, 0 when absent): to order it against other writes."""
        found = etcd.get_key(self.client, self._key(key))
        if not found:
            return None, 0
        return _load_value(found), int(found[1]['mod_revision'])

    def values(self, key_prefix: str) -> dict[str, dict]:
        """Every value under ``prefix + key_prefix``, by the rest of its
        key (e.g. ``values('fencing/')`` -> {host: result})."""
        base = self._key(key_prefix)
        return {_key_text(meta)[len(base):]: _load_value((raw, meta))
                for raw, meta in etcd.get_prefix(self.client, base)}

    # -- operator writes (not fenced) ------------------------------------
    def set_paused(self, reason: str, by: str) -> None:
        """Pause the cluster: the leader starts no new recovery."""
        self._put(self._key('paused'),
                  {'reason': reason, 'by': by, 'at': time.time()})

    def clear_paused(self) -> None:
        with etcd.translate_errors('delete of paused'):
            self.client.delete(self._key('paused'))

    def paused(self) -> dict | None:
        """``{"reason", "by", "at"}`` while paused, else None."""
        return self.get('paused')

    def request(self, kind: str, host: str, data: dict) -> None:
        """Leave an operator request (``fence-confirmed``, ``retry`` ...)."""
        self._put(self._key(self._request_key(kind, host)),
                  {'at': time.time(), **data})

    def requests(self, kind: str, unreadable: dict[str, str] | None = None
                 ) -> dict[str, dict]:
        """Pending requests of ``kind``: {host or id: data}.

        Each request's data carries ``revision``: the etcd revision it was
        written at, to order it against records without any clock. With
        ``unreadable`` (a dict), a request that cannot be read is reported
        there (host -> error) and skipped instead of failing the read.
        """
        base = self.prefix + self._request_key(kind, '')
        found = {}
        for raw, meta in etcd.get_prefix(self.client, base):
            name = _key_text(meta)[len(base):]
            try:
                found[name] = {**_load_value((raw, meta)),
                               'revision': int(meta['mod_revision'])}
            except StoreValueError as error:
                if unreadable is None:
                    raise
                unreadable[name] = str(error)
        return found

    # -- internals ------------------------------------------------------
    def _epoch(self, need: float = 0.0) -> int:
        if self.lease is None:
            raise exceptions.LeadershipLost(
                'this store has no leader lease: fenced writes refused')
        return self.lease.ensure(need)

    def _fenced(self, epoch: int, ops: list[dict], what: str,
                guard: dict | None = None) -> dict:
        compare = [etcd.compare_create(self.leader_key, epoch)]
        result = etcd.txn(self.client, compare + ([guard] if guard else []),
                          ops, what=what)
        if result['succeeded']:
            return result
        if guard is not None and etcd.txn(
                self.client, compare, [], what=what)['succeeded']:
            raise exceptions.StaleRecord(
                f'{what} rejected: the record changed since it was read')
        if self.lease is not None:
            self.lease.invalidate(f'{what} rejected at epoch {epoch}')
        raise exceptions.StaleEpoch(
            f'{what} rejected: epoch {epoch} is no longer the leader '
            f'of {self.cluster}')

    def _trim_history(self, epoch: int) -> None:
        keys = [meta['key'].decode() for _raw, meta in etcd.get_prefix(
            self.client, self.prefix + 'history/', keys_only=True)]
        excess = keys[:max(0, len(keys) - self.history_size)]
        for start in range(0, len(excess), MAX_TXN_OPS):
            chunk = excess[start:start + MAX_TXN_OPS]
            self._fenced(epoch, [etcd.delete_op(key) for key in chunk],
                         f'history trim of {len(chunk)} records')

    def _put(self, key: str, value: dict) -> None:
        with etcd.translate_errors(f'write of {key}'):
            self.client.put(key, _value_json(value))

    def _key(self, key: str) -> str:
        if not key or key.startswith('/') or key == 'leader':
            raise ValueError(f'not a store key: {key!r}')
        return self.prefix + key

    def _recovery_key(self, host: str) -> str:
        return self._key(f'recoveries/{host}')

    def _history_key(self, recovery_id: str) -> str:
        return self._key(f'history/{recovery_id}')

    @staticmethod
    def _request_key(kind: str, host: str) -> str:
        return f'requests/{kind}/{host}'


def _record_json(record: RecoveryRecord) -> str:
    return json.dumps({'schema': SCHEMA_VERSION, 'record': record.to_dict()})


def _value_json(value: dict) -> str:
    return json.dumps({'schema': SCHEMA_VERSION, 'value': value})


def _payload(item: tuple[bytes, dict], *fields: str) -> t.Any:
    """The first of ``fields`` in a stored envelope, schema checked."""
    raw, meta = item
    key = meta.get('key', b'?')
    key = key.decode() if isinstance(key, bytes) else key
    try:
        data = json.loads(raw)
        schema = data['schema']
        payload = next(data[f] for f in fields if f in data)
    except (ValueError, KeyError, TypeError, StopIteration):
        raise StoreValueError(f'{key}: not a freezer-dr value '
                              f'(schema {SCHEMA_VERSION} JSON)')
    if not isinstance(schema, int) or schema > SCHEMA_VERSION:
        raise StoreValueError(
            f'{key} was written with schema {schema}; this freezer-dr '
            f'understands schema {SCHEMA_VERSION} at most: upgrade it')
    return payload


def _load_record(item: tuple[bytes, dict]) -> RecoveryRecord:
    try:
        record = RecoveryRecord.from_dict(_payload(item, 'record'))
        if '/recoveries/' in _key_text(item[1]):
            record.revision = int(item[1]['mod_revision'])
        return record
    except (TypeError, ValueError, AttributeError) as exc:
        raise StoreValueError(f'{item[1].get("key")!r}: bad recovery '
                              f'record: {exc}')


def _load_value(item: tuple[bytes, dict]) -> dict:
    value = _payload(item, 'value', 'record')
    if not isinstance(value, dict):
        raise StoreValueError(f'{item[1].get("key")!r}: not a JSON object')
    return value


def _key_text(meta: dict) -> str:
    key = meta.get('key', b'')
    return key.decode() if isinstance(key, bytes) else str(key)
