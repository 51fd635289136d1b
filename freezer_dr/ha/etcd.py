"""etcd client construction from a tooz-style URL, and error translation.

Every etcd call of ``freezer_dr.ha`` goes through a client made here, with
a short HTTP timeout, and through :func:`translate_errors`, so callers only
ever see :class:`~freezer_dr.exceptions.StoreUnavailable`.
"""
from __future__ import annotations

import base64
import contextlib
import typing as t
import urllib.parse

import etcd3gw
import requests
from etcd3gw import exceptions as etcd_exc
from etcd3gw.client import Etcd3Client

from freezer_dr import exceptions

OPTION = '[coordination] backend_url'
SCHEMES = {'etcd3+http': 'http', 'etcd3+https': 'https'}
API_PATH = '/v3/'     # etcd >= 3.4; fixed so no discovery request is made

#: Errors a call to etcd3gw may raise when etcd is unreachable or unwell.
ETCD_ERRORS = (etcd_exc.Etcd3Exception, requests.RequestException)


def parse_backend_url(url: str) -> tuple[str, str, int]:
    """Split ``etcd3+http://HOST:PORT`` into (protocol, host, port).

    Raises ConfigError naming ``[coordination] backend_url`` when the URL
    is not a tooz etcd3gw URL.
    """
    shown = redact_url(url)
    try:
        parts = urllib.parse.urlsplit(url or '')
        port = parts.port
    except ValueError as exc:
        raise exceptions.ConfigError(
            f'{OPTION} {shown!r} is not a valid URL: {exc}')
    if parts.scheme not in SCHEMES:
        raise exceptions.ConfigError(
            f'{OPTION} {shown!r}: scheme must be one of '
            f'{", ".join(sorted(SCHEMES))} (tooz etcd3gw driver)')
    if not parts.hostname:
        raise exceptions.ConfigError(f'{OPTION} {shown!r} has no host')
    if parts.username or parts.password:
        raise exceptions.ConfigError(
            f'{OPTION} {shown!r}: user names and passwords in the URL are '
            f'not supported (use TLS client certificates)')
    if parts.path not in ('', '/'):
        raise exceptions.ConfigError(
            f'{OPTION} {shown!r}: unexpected path {parts.path!r}')
    unknown = set(backend_options(url)) - set(URL_OPTIONS)
    if unknown:
        raise exceptions.ConfigError(
            f'{OPTION} {shown!r}: unknown option(s) '
            f'{", ".join(sorted(unknown))}; known: '
            f'{", ".join(URL_OPTIONS)}')
    return SCHEMES[parts.scheme], parts.hostname, port or 2379


#: Query options of the URL that we honour (tooz's names). Timeouts are
#: ours to set: [coordination] http_timeout and membership_timeout.
URL_OPTIONS = ('ca_cert', 'cert_key', 'cert_cert', 'api_version',
               'timeout', 'membership_timeout', 'lock_timeout')
TLS_OPTIONS = ('ca_cert', 'cert_key', 'cert_cert')


def backend_options(url: str) -> dict[str, str]:
    """The query options of a backend URL (last one wins)."""
    query = urllib.parse.urlsplit(url or '').query
    return dict(urllib.parse.parse_qsl(query))


def redact_url(url: str) -> str:
    """``url`` with any password replaced, fit for logs and errors."""
    try:
        parts = urllib.parse.urlsplit(url or '')
        if parts.password is None:
            return url
        netloc = parts.netloc.replace(f':{parts.password}@', ':***@', 1)
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return '<unparsable URL>'


def make_client(url: str, timeout: float) -> Etcd3Client:
    """An etcd3gw client for ``url`` whose every request times out.

    TLS files come from the URL's ``ca_cert``, ``cert_key`` and
    ``cert_cert`` options, as in tooz.
    """
    if timeout <= 0:
        raise exceptions.ConfigError(
            f'[coordination] http_timeout must be > 0, got {timeout}')
    protocol, host, port = parse_backend_url(url)
    options = backend_options(url)
    api_path = API_PATH
    if options.get('api_version'):
        api_path = f'/{options["api_version"].strip("/")}/'
    return etcd3gw.client(host=host, port=port, protocol=protocol,
                          timeout=timeout, api_path=api_path,
                          ca_cert=options.get('ca_cert'),
                          cert_key=options.get('cert_key'),
                          cert_cert=options.get('cert_cert'))


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
    """One keepalive: the lease's new TTL, or -1 if it has expired."""
    with translate_errors('lease keepalive'):
        result = client.post(client.get_url('/lease/keepalive'),
                             json={'ID': lease_id})
    return int(result.get('result', {}).get('TTL', -1))


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
