"""tooz's etcd3gw driver on our etcd client: tooz backend ``freezer-etcd3``.

Registered in ``tooz.backends`` as ``freezer-etcd3+http`` and
``freezer-etcd3+https``: the URL may list several etcd members
(``freezer-etcd3+https://h1:2379,h2:2379?ca_cert=...``). Requests go
through :class:`~freezer_dr.ha.etcd_client.FailoverClient`, which moves to
the next member on a connection error and whose TLS settings win over
``REQUESTS_CA_BUNDLE``. Options besides tooz's own:

``http_timeout``  seconds of each HTTP request (a float; tooz's ``timeout``
                  is whole seconds and also the lease TTL)
``reader``        ``1``: a coordinator that only reads the groups and never
                  joins one: it holds no membership lease
"""
from __future__ import annotations

import math
import typing as t
import urllib.parse

from tooz import utils as tooz_utils
from tooz.drivers import etcd3gw as tooz_etcd3gw

from freezer_dr.ha import endpoints
from freezer_dr.ha import etcd

SCHEME = 'freezer-etcd3'
#: our backend URL's query options that the driver hands to our client
CLIENT_OPTIONS = (*endpoints.TLS_OPTIONS, 'api_version')


def coordinator_url(backend_url: str, http_timeout: float,
                    membership_timeout: float, reader: bool = False) -> str:
    """The tooz URL of this driver for ``[coordination] backend_url``.

    Raises ConfigError naming the option when ``backend_url`` is invalid.
    """
    etcd.parse_backend_url(backend_url)
    parts = urllib.parse.urlsplit(backend_url)
    options = {k: v for k, v in etcd.backend_options(backend_url).items()
               if k in CLIENT_OPTIONS}
    options.update(http_timeout=repr(float(http_timeout)),
                   membership_timeout=max(1, math.ceil(membership_timeout)))
    if reader:
        options['reader'] = 1
    return urllib.parse.urlunsplit(
        (f'{SCHEME}+{endpoints.SCHEMES[parts.scheme]}', parts.netloc, '',
         urllib.parse.urlencode(options), ''))


def backend_url(parsed_url: t.Any, options: dict[str, t.Any]) -> str:
    """The ``[coordination] backend_url`` a coordinator URL was made from."""
    protocol = 'https' if parsed_url.scheme.endswith('https') else 'http'
    query = {k: options[k] for k in CLIENT_OPTIONS if options.get(k)}
    return urllib.parse.urlunsplit(
        (f'etcd3+{protocol}', parsed_url.netloc, '',
         urllib.parse.urlencode(query), ''))


class FailoverEtcd3Driver(tooz_etcd3gw.Etcd3Driver):
    """tooz's etcd3gw driver whose client knows every member of the URL."""

    def __init__(self, member_id: bytes, parsed_url: t.Any,
                 options: dict[str, t.Any]) -> None:
        collapsed = tooz_utils.collapse(options)
        url = backend_url(parsed_url, collapsed)
        backend = etcd.parse_backend_url(url)
        http_timeout = float(collapsed.get('http_timeout', 2.0))
        # tooz's constructor reads one host:port; its client is replaced
        first = parsed_url._replace(netloc=str(backend.endpoints[0]))
        super().__init__(member_id, first, options)
        self.client = etcd.make_client(url, http_timeout)
        self.reader = str(collapsed.get('reader', '')) in ('1', 'true')

    def _start(self) -> None:
        if self.reader:     # no membership lease: it never joins a group
            super(tooz_etcd3gw.Etcd3Driver, self)._start()
        else:
            super()._start()
