"""The etcd backend URL: endpoints, TLS files, and their start-up checks.

``[coordination] backend_url`` is a tooz URL whose authority may list
several members, ``etcd3+https://h1:2379,h2:2379,h3:2379?ca_cert=...``.
:func:`parse` turns it into :class:`Backend`; :func:`check_tls_files`
and :func:`probe_tls` refuse unreadable certificates and a CA that does
not match, each with one line naming the option or file.
"""
from __future__ import annotations

import dataclasses
import os
import ssl
import urllib.parse

import requests

from freezer_dr import exceptions

OPTION = '[coordination] backend_url'
SCHEMES = {'etcd3+http': 'http', 'etcd3+https': 'https'}
DEFAULT_PORT = 2379
API_PATH = '/v3/'     # etcd >= 3.4; fixed so no discovery request is made

#: Query options of the URL that we honour (tooz's names). Timeouts are
#: ours to set: [coordination] http_timeout and membership_timeout.
URL_OPTIONS = ('ca_cert', 'cert_key', 'cert_cert', 'api_version',
               'timeout', 'membership_timeout', 'lock_timeout')
TLS_OPTIONS = ('ca_cert', 'cert_key', 'cert_cert')


@dataclasses.dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'{host}:{self.port}'


@dataclasses.dataclass(frozen=True)
class Backend:
    """Everything a client needs to reach the etcd cluster."""
    protocol: str                       # http or https
    endpoints: tuple[Endpoint, ...]
    api_path: str = API_PATH
    ca_cert: str | None = None
    cert_key: str | None = None
    cert_cert: str | None = None

    def base_url(self, endpoint: Endpoint) -> str:
        return f'{self.protocol}://{endpoint}'

    @property
    def tls(self) -> bool:
        return self.protocol == 'https'

    def session(self) -> requests.Session:
        """A requests session for etcd, TLS settings applied.

        The session ignores the environment (``trust_env``): otherwise
        ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` would override the
        configured ``ca_cert`` on every request, and HTTP proxy variables
        would route etcd traffic through a proxy. Without ``ca_cert`` an
        https session verifies against the environment's bundle, if any.
        """
        session = requests.Session()
        session.trust_env = False
        if self.ca_cert:
            session.verify = self.ca_cert
        else:
            session.verify = (os.environ.get('REQUESTS_CA_BUNDLE')
                              or os.environ.get('CURL_CA_BUNDLE') or True)
        if self.cert_cert and self.cert_key:
            session.cert = (self.cert_cert, self.cert_key)
        return session


def options(url: str) -> dict[str, str]:
    """The query options of a backend URL (last one wins)."""
    query = urllib.parse.urlsplit(url or '').query
    return dict(urllib.parse.parse_qsl(query))


def redact(url: str) -> str:
    """``url`` with any password replaced, fit for logs and errors."""
    try:
        parts = urllib.parse.urlsplit(url or '')
    except ValueError:
        return '<unparsable URL>'
    userinfo, sep, hosts = parts.netloc.rpartition('@')
    if not sep or ':' not in userinfo:
        return url
    user = userinfo.split(':', 1)[0]
    return urllib.parse.urlunsplit(
        parts._replace(netloc=f'{user}:***@{hosts}'))


def parse(url: str) -> Backend:
    """A :class:`Backend` from ``url``; ConfigError naming the option."""
    shown = redact(url)
    try:
        parts = urllib.parse.urlsplit(url or '')
    except ValueError as exc:
        raise exceptions.ConfigError(
            f'{OPTION} {shown!r} is not a valid URL: {exc}')
    if parts.scheme not in SCHEMES:
        raise exceptions.ConfigError(
            f'{OPTION} {shown!r}: scheme must be one of '
            f'{", ".join(sorted(SCHEMES))} (tooz etcd3gw driver)')
    if '@' in parts.netloc:
        raise exceptions.ConfigError(
            f'{OPTION} {shown!r}: user names and passwords in the URL are '
            f'not supported (use TLS client certificates)')
    endpoints = _endpoints(parts.netloc, shown)
    if parts.path not in ('', '/'):
        raise exceptions.ConfigError(
            f'{OPTION} {shown!r}: unexpected path {parts.path!r}')
    found = options(url)
    unknown = set(found) - set(URL_OPTIONS)
    if unknown:
        raise exceptions.ConfigError(
            f'{OPTION} {shown!r}: unknown option(s) '
            f'{", ".join(sorted(unknown))}; known: {", ".join(URL_OPTIONS)}')
    protocol = SCHEMES[parts.scheme]
    tls = {name: found.get(name) or None for name in TLS_OPTIONS}
    given = [name for name, value in tls.items() if value]
    if protocol == 'http' and given:
        raise exceptions.ConfigError(
            f'{OPTION}: TLS options ({", ".join(given)}) need the '
            f'etcd3+https scheme')
    if bool(tls['cert_key']) != bool(tls['cert_cert']):
        raise exceptions.ConfigError(
            f'{OPTION}: cert_key and cert_cert go together (the client '
            f'certificate and its private key)')
    api_path = API_PATH
    if found.get('api_version'):
        api_path = f'/{found["api_version"].strip("/")}/'
    return Backend(protocol, endpoints, api_path, **tls)


def _endpoints(netloc: str, shown: str) -> tuple[Endpoint, ...]:
    if not netloc:
        raise exceptions.ConfigError(f'{OPTION} {shown!r} has no host')
    found: list[Endpoint] = []
    for item in netloc.split(','):
        item = item.strip()
        try:
            parts = urllib.parse.urlsplit(f'//{item}')
            port = parts.port
        except ValueError as exc:
            raise exceptions.ConfigError(
                f'{OPTION} {shown!r}: bad endpoint {item!r}: {exc}')
        if not item or not parts.hostname:
            raise exceptions.ConfigError(
                f'{OPTION} {shown!r}: empty endpoint in the host list '
                f'(write host:port,host:port)')
        if item.endswith(':'):
            raise exceptions.ConfigError(
                f'{OPTION} {shown!r}: bad endpoint {item!r}: no port '
                f'after the colon')
        endpoint = Endpoint(parts.hostname, port or DEFAULT_PORT)
        if endpoint in found:
            raise exceptions.ConfigError(
                f'{OPTION} {shown!r}: endpoint {endpoint} is listed twice')
        found.append(endpoint)
    return tuple(found)


def check_tls_files(backend: Backend) -> None:
    """Refuse unreadable or unusable TLS files, naming option and file."""
    if backend.ca_cert:
        _readable('ca_cert', backend.ca_cert)
        try:
            ssl.create_default_context(cafile=backend.ca_cert)
        except (ssl.SSLError, ValueError) as exc:
            raise exceptions.ConfigError(
                f'{OPTION} ca_cert {backend.ca_cert}: not a PEM CA '
                f'certificate ({_reason(exc)})') from None
    if backend.cert_cert and backend.cert_key:
        _readable('cert_cert', backend.cert_cert)
        _readable('cert_key', backend.cert_key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_cert_chain(backend.cert_cert, backend.cert_key)
        except (ssl.SSLError, ValueError) as exc:
            raise exceptions.ConfigError(
                f'{OPTION} cert_cert {backend.cert_cert} / cert_key '
                f'{backend.cert_key}: not a PEM certificate and its '
                f'private key ({_reason(exc)})') from None


def _readable(option: str, path: str) -> None:
    try:
        with open(path, 'rb'):
            pass
    except OSError as exc:
        raise exceptions.ConfigError(
            f'{OPTION} {option}: cannot read {path}: '
            f'{exc.strerror or exc}') from None


def _reason(exc: BaseException) -> str:
    return getattr(exc, 'reason', None) or str(exc) or type(exc).__name__


def probe_tls(backend: Backend, timeout: float) -> dict[str, str]:
    """Ask every member for ``/version``; refuse a TLS mismatch.

    Returns ``{endpoint: 'ok' | why unreachable}``. A member whose
    certificate the configured CA does not verify, or that rejects our
    client certificate, raises ConfigError naming the file: that will not
    heal by retrying. Unreachable members are not errors (etcd may start
    after us).
    """
    session = backend.session()
    seen: dict[str, str] = {}
    try:
        for endpoint in backend.endpoints:
            url = backend.base_url(endpoint) + '/version'
            try:
                session.get(url, timeout=timeout)
                seen[str(endpoint)] = 'ok'
            except requests.exceptions.SSLError as exc:
                raise exceptions.ConfigError(
                    tls_failure(backend, endpoint, exc)) from None
            except requests.RequestException as exc:
                seen[str(endpoint)] = type(exc).__name__
    finally:
        session.close()
    return seen


def tls_failure(backend: Backend, endpoint: Endpoint,
                exc: BaseException) -> str:
    """One line saying which TLS setting failed against ``endpoint``."""
    text = str(exc)
    if 'CERTIFICATE_VERIFY_FAILED' in text or 'verify failed' in text:
        if "match" in text or 'hostname' in text.lower():
            return (f'{OPTION}: the certificate of etcd at {endpoint} does '
                    f'not name that host ({_short(text)})')
        return (f'{OPTION} ca_cert {backend.ca_cert or "(system CAs)"}: '
                f'does not verify the certificate of etcd at {endpoint} '
                f'({_short(text)})')
    if any(word in text for word in ('CERTIFICATE_REQUIRED', 'BAD_CERT',
                                     'certificate required', 'bad certificate',
                                     'UNKNOWN_CA', 'unknown ca')):
        return (f'{OPTION} cert_cert {backend.cert_cert or "(none)"}: etcd '
                f'at {endpoint} rejected the client certificate '
                f'({_short(text)})')
    return f'{OPTION}: TLS with etcd at {endpoint} failed ({_short(text)})'


def _short(text: str) -> str:
    """The interesting tail of a urllib3/ssl error message."""
    for marker in ('[SSL', 'SSLError('):
        if marker in text:
            text = text[text.index(marker):]
            break
    return text[:160].rstrip(")'\" ")
