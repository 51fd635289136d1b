"""etcd client construction from a tooz-style URL, and error translation.

Every etcd call of ``freezer_dr.ha`` goes through a client made here, with
a short HTTP timeout, and through :func:`translate_errors`, so callers only
ever see :class:`~freezer_dr.exceptions.StoreUnavailable`.
"""
from __future__ import annotations

import base64
import contextlib
import typing as t

import requests
from etcd3gw import exceptions as etcd_exc
from etcd3gw.client import Etcd3Client

from freezer_dr import exceptions
from freezer_dr.ha import endpoints
from freezer_dr.ha.etcd_client import FailoverClient
from freezer_dr.ha.etcd_client import describe_request_error

OPTION = endpoints.OPTION
URL_OPTIONS = endpoints.URL_OPTIONS
TLS_OPTIONS = endpoints.TLS_OPTIONS

#: Errors a call to etcd3gw may raise when etcd is unreachable or unwell.
ETCD_ERRORS = (etcd_exc.Etcd3Exception, requests.RequestException)


def parse_backend_url(url: str) -> endpoints.Backend:
    """The members, scheme and TLS files of a backend URL.

    ``etcd3+http(s)://HOST[:PORT][,HOST[:PORT]...][?options]``; raises
    ConfigError naming ``[coordination] backend_url`` when it is not one.
    """
    return endpoints.parse(url)


def backend_options(url: str) -> dict[str, str]:
    """The query options of a backend URL (last one wins)."""
    return endpoints.options(url)


def redact_url(url: str) -> str:
    """``url`` with any password replaced, fit for logs and errors."""
    return endpoints.redact(url)


def make_client(url: str, timeout: float) -> FailoverClient:
    """An etcd client for every member of ``url``; each request times out.

    TLS files come from the URL's ``ca_cert``, ``cert_key`` and
    ``cert_cert`` options, as in tooz, and win over the environment.
    """
    if timeout <= 0:
        raise exceptions.ConfigError(
            f'[coordination] http_timeout must be > 0, got {timeout}')
    return FailoverClient(parse_backend_url(url), timeout)


@contextlib.contextmanager
def translate_errors(what: str) -> t.Iterator[None]:
    """Turn etcd3gw/requests errors into StoreUnavailable naming ``what``."""
    try:
        yield
    except ETCD_ERRORS as exc:
        detail = getattr(exc, 'detail_text', None) or str(exc) or type(
            exc).__name__
        raise exceptions.StoreUnavailable(
            f'etcd {what} failed: {detail}') from exc


def b64(data: str | bytes) -> str:
    """etcd's JSON gateway wants keys and values in base64."""
    if isinstance(data, str):
        data = data.encode('utf-8')
    return base64.b64encode(data).decode('ascii')


def unb64(data: str) -> bytes:
    return base64.b64decode(data)


def prefix_end(prefix: str) -> str:
    """The range end that selects every key starting with ``prefix``."""
    raw = bytearray(prefix.encode('utf-8'))
    raw[-1] += 1
    return bytes(raw).decode('utf-8')


# -- transaction pieces ------------------------------------------------
def put_op(key: str, value: str | bytes, lease: int | None = None) -> dict:
    op: dict[str, t.Any] = {'key': b64(key), 'value': b64(value)}
    if lease:
        op['lease'] = lease
    return {'request_put': op}


def delete_op(key: str) -> dict:
    return {'request_delete_range': {'key': b64(key)}}


def range_op(key: str) -> dict:
    return {'request_range': {'key': b64(key)}}


def compare_create(key: str, revision: int) -> dict:
    """Compare: ``key`` was created at ``revision`` (0: does not exist)."""
    return {'key': b64(key), 'result': 'EQUAL', 'target': 'CREATE',
            'create_revision': revision}


def compare_mod(key: str, revision: int) -> dict:
    """Compare: ``key`` was last written at ``revision``."""
    return {'key': b64(key), 'result': 'EQUAL', 'target': 'MOD',
            'mod_revision': revision}


def compare_lease(key: str, lease_id: int) -> dict:
    """Compare: ``key`` is bound to lease ``lease_id``."""
    return {'key': b64(key), 'result': 'EQUAL', 'target': 'LEASE',
            'lease': lease_id}


def txn(client: Etcd3Client, compare: list[dict], success: list[dict],
        failure: list[dict] | None = None,
        what: str = 'transaction') -> dict:
    """One etcd transaction; the response has ``succeeded`` set."""
    with translate_errors(what):
        result = dict(client.transaction({'compare': compare,
                                          'success': success,
                                          'failure': failure or []}))
    result['succeeded'] = bool(result.get('succeeded', False))
    return result


def txn_revision(result: dict) -> int:
    """The store revision a transaction response was made at."""
    return int(result['header']['revision'])


# -- reads -----------------------------------------------------------
def get_key(client: Etcd3Client, key: str) -> tuple[bytes, dict] | None:
    """(value, metadata) of ``key`` by a linearizable read, or None."""
    with translate_errors(f'read of {key}'):
        found = client.get(key, metadata=True)
    return found[0] if found else None


def get_prefix(client: Etcd3Client, prefix: str, *,
               newest_first: bool = False, limit: int | None = None,
               keys_only: bool = False) -> list[tuple[bytes, dict]]:
    """Every (value, metadata) under ``prefix``, by create revision."""
    with translate_errors(f'read of {prefix}*'):
        return client.get(prefix, metadata=True, range_end=prefix_end(prefix),
                          sort_order='descend' if newest_first else 'ascend',
                          sort_target='create', limit=limit,
                          keys_only=keys_only or None)


# -- leases ----------------------------------------------------------
def grant_lease(client: Etcd3Client, ttl: int) -> tuple[int, int]:
    """A new lease of ``ttl`` seconds: (lease id, TTL etcd granted)."""
    with translate_errors('lease grant'):
        result = client.post(client.get_url('/lease/grant'),
                             json={'TTL': ttl, 'ID': 0})
    return int(result['ID']), int(result['TTL'])


def refresh_lease(client: Etcd3Client, lease_id: int) -> int:
    """One keepalive: the lease's new TTL, or -1 if it has expired.

    Only an answer with a ``result`` says anything about the lease: an
    error body (etcd 3.4 sends a failed keepalive stream as HTTP 200 with
    ``{"error": ...}``) is a failed keepalive, never an expired lease.
    """
    with translate_errors('lease keepalive'):
        result = client.post(client.get_url('/lease/keepalive'),
                             json={'ID': lease_id})
    answer = result.get('result') if isinstance(result, dict) else None
    if not isinstance(answer, dict) or 'error' in result:
        detail = (result.get('error') if isinstance(result, dict)
                  else result)
        raise exceptions.StoreUnavailable(
            f'etcd lease keepalive failed: no result in the answer: '
            f'{str(detail)[:200]}')
    return int(answer.get('TTL', -1))


def revoke_lease(client: Etcd3Client, lease_id: int) -> bool:
    """Revoke a lease (its keys go with it); False if it was already gone."""
    try:
        with translate_errors('lease revoke'):
            client.post(client.get_url('/kv/lease/revoke'),
                        json={'ID': lease_id})
    except exceptions.StoreUnavailable as exc:
        if _lease_not_found(exc.__cause__):
            return False
        raise
    return True


def lease_time_to_live(client: Etcd3Client, lease_id: int) -> int:
    """Seconds left on a lease by etcd's clock, -1 if it has expired."""
    with translate_errors('lease time-to-live'):
        result = client.post(client.get_url('/kv/lease/timetolive'),
                             json={'ID': lease_id})
    return int(result.get('TTL', -1))


def _lease_not_found(exc: BaseException | None) -> bool:
    detail = getattr(exc, 'detail_text', None) or ''
    return 'lease not found' in detail


def list_leases(client: Etcd3Client) -> list[int]:
    """Ids of every lease etcd currently holds (for tests and status)."""
    with translate_errors('lease list'):
        result = client.post(client.get_url('/lease/leases'), json={})
    return [int(item['ID']) for item in result.get('leases', [])]


def health(client: Etcd3Client) -> bool:
    """True when etcd answers a linearizable read (its /health check)."""
    try:
        resp = client.session.get(client.base_url + '/health',
                                  timeout=client.timeout)
        return resp.ok and resp.json().get('health') == 'true'
    except ETCD_ERRORS:
        return False


def member_status(client: FailoverClient) -> list[dict[str, t.Any]]:
    """Each configured member's view of itself (etcd's maintenance/status).

    One entry per endpoint, in configuration order: ``endpoint``,
    ``reachable``, ``leader`` (it is the raft leader), ``raft_term``,
    ``version`` and, when something is wrong, ``error``. Asked of each
    member directly, never through failover.
    """
    found = []
    for endpoint in client.backend.endpoints:
        entry: dict[str, t.Any] = {
            'endpoint': str(endpoint), 'reachable': False, 'leader': None,
            'raft_term': None, 'version': None}
        try:
            resp = client.session.post(
                client.url_on(endpoint, '/maintenance/status'), json={},
                timeout=client.timeout)
            body = resp.json()
            if not resp.ok or not isinstance(body, dict) or 'error' in body:
                raise ValueError(f'HTTP {resp.status_code}: '
                                 f'{str(body)[:120]}')
        except requests.exceptions.SSLError as exc:
            entry['error'] = endpoints.tls_failure(client.backend, endpoint,
                                                   exc)
        except ValueError as exc:          # an answer, not etcd's (JSON)
            entry['error'] = str(exc)[:160]
        except requests.RequestException as exc:
            entry['error'] = describe_request_error(exc)
        else:
            member = body.get('header', {}).get('member_id')
            entry.update(
                reachable=True, version=body.get('version'),
                leader=bool(member) and body.get('leader') == member,
                raft_term=int(body.get('raftTerm', 0)) or None)
            if body.get('errors'):
                entry['error'] = '; '.join(map(str, body['errors']))
        found.append(entry)
    return found

