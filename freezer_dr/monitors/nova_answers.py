"""Nova's and Neutron's list answers read defensively, entry by entry.

Whatever a look cannot interpret becomes a reason (per host) or a note
(per entry that names no host), never an exception: a down cell at
microversion >= 2.69 lists its services as ``{binary, host, status:
"UNKNOWN"}`` with no ``state``, and the next release may do anything else.
Only an answer whose overall shape is wrong raises :class:`MalformedAnswer`.
"""
from __future__ import annotations

import dataclasses
import typing as t

import openstack.exceptions as sdk_exc

from freezer_dr import cloud

COMPUTE_BINARY = 'nova-compute'
SERVICE_STATES = ('up', 'down')
SERVICE_STATUSES = ('enabled', 'disabled')
#: how much of an entry a reason quotes
QUOTE = 120


class MalformedAnswer(ValueError):
    """A list answer whose shape is not the documented one."""


def quote(value: t.Any) -> str:
    """A short repr of ``value`` for a reason or a log line."""
    text = repr(value)
    return text if len(text) <= QUOTE else text[:QUOTE - 3] + '...'


def _body(response: t.Any, path: str, key: str) -> dict[str, t.Any]:
    try:
        body = response.json()
    except ValueError:
        raise MalformedAnswer(f'{path}: answer is not JSON') from None
    if not isinstance(body, dict):
        raise MalformedAnswer(f'{path}: answer is {type(body).__name__}, '
                              f'not a JSON object')
    if not isinstance(body.get(key), list):
        raise MalformedAnswer(f'{path}: {key!r} is '
                              f'{quote(body.get(key))}, not a list')
    return body


def _next_url(body: dict[str, t.Any], path: str, key: str) -> str | None:
    links = body.get(f'{key}_links')
    if links is None:
        return None
    if not isinstance(links, list):
        raise MalformedAnswer(f'{path}: {key}_links is not a list')
    for link in links:
        if isinstance(link, dict) and link.get('rel') == 'next':
            href = link.get('href')
            if not isinstance(href, str) or not href:
                raise MalformedAnswer(f'{path}: next link without an href')
            return href
    return None


def list_json(proxy: t.Any, path: str, key: str,
              params: dict[str, str] | None = None,
              microversion: str | None = None,
              max_pages: int = 1000) -> list[t.Any]:
    """Every item of a list API as plain JSON, following ``<key>_links``
    pagination (Nova pages hypervisors by ``[api] max_limit``).

    API errors propagate (openstacksdk / keystoneauth exceptions); an
    answer that is not a JSON object with a ``key`` list raises
    :class:`MalformedAnswer`. Items are returned as they came: any type.
    """
    items: list[t.Any] = []
    url: str | None = path
    for _ in range(max_pages):
        extra = {'microversion': microversion} if microversion else {}
        response = proxy.get(url, params=params, **extra)
        sdk_exc.raise_from_response(response)
        body = _body(response, path, key)
        items.extend(body[key])
        url = _next_url(body, path, key)
        if not url:
            return items
        params = None             # the next link carries the query
    raise MalformedAnswer(f'{path}: more than {max_pages} pages')


def _host_of(entry: dict[str, t.Any], *keys: str) -> str | None:
    for key in keys:
        value = entry.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


@dataclasses.dataclass(frozen=True)
class ServiceEntry:
    """One nova-compute service entry; ``unknown`` says why it cannot be
    read (then ``state`` is None)."""
    host: str
    state: str | None
    status: str = 'enabled'
    forced_down: bool = False
    updated_at: str | None = None
    disabled_reason: str | None = None
    unknown: str | None = None
    raw: dict[str, t.Any] = dataclasses.field(default_factory=dict)


def _service_problem(entry: dict[str, t.Any]) -> str | None:
    """Why a compute service entry that names its host cannot be read."""
    state, status = entry.get('state'), entry.get('status')
    if 'state' not in entry:
        if status == 'UNKNOWN':
            return ("Nova cannot reach the host's cell: service listed "
                    "with status UNKNOWN and no state")
        return 'service entry has no state'
    if state not in SERVICE_STATES:
        return f'service state {quote(state)} is neither up nor down'
    if status not in SERVICE_STATUSES:
        return f'service status {quote(status)} is neither enabled ' \
               f'nor disabled'
    forced = entry.get('forced_down', False)
    if forced is not None and not isinstance(forced, bool):
        return f'forced_down {quote(forced)} is not a boolean'
    updated = entry.get('updated_at')
    if updated is not None and (not isinstance(updated, str)
                                or cloud.parse_time(updated) is None):
        return f'updated_at {quote(updated)} is not a timestamp'
    reason = entry.get('disabled_reason')
    if reason is not None and not isinstance(reason, str):
        return f'disabled_reason {quote(reason)} is not text'
    return None


def compute_services(items: list[t.Any],
                     ) -> tuple[list[ServiceEntry], list[str]]:
    """The nova-compute entries of an ``os-services`` list, and one
    sentence per entry that names no host (those cannot be reported).

    Entries of other binaries are left out; an entry without a binary is
    taken for nova-compute (the request filtered on it).
    """
    entries: list[ServiceEntry] = []
    unnamed: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            unnamed.append(f'service entry {quote(item)} is not an object')
            continue
        binary = item.get('binary', COMPUTE_BINARY)
        if isinstance(binary, str) and binary != COMPUTE_BINARY:
            continue
        host = _host_of(item, 'host')
        if host is None:
            unnamed.append(f'service entry names no host: {quote(item)}')
            continue
        problem = (f'service binary {quote(binary)} is not text'
                   if not isinstance(binary, str)
                   else _service_problem(item))
        if problem is not None:
            entries.append(ServiceEntry(host=host, state=None,
                                        unknown=problem, raw=item))
            continue
        entries.append(ServiceEntry(
            host=host, state=item['state'], status=item['status'],
            forced_down=bool(item.get('forced_down')),
            updated_at=item.get('updated_at'),
            disabled_reason=item.get('disabled_reason'), raw=item))
    return _one_per_host(entries), unnamed


def _one_per_host(entries: list[ServiceEntry]) -> list[ServiceEntry]:
    """A host listed twice (two cells, a renamed host) cannot be read."""
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.host] = counts.get(entry.host, 0) + 1
    out: list[ServiceEntry] = []
    for entry in entries:
        if counts[entry.host] == 1:
            out.append(entry)
        elif counts[entry.host] > 1:
            out.append(ServiceEntry(
                host=entry.host, state=None, raw=entry.raw,
                unknown=f'{counts[entry.host]} {COMPUTE_BINARY} services '
                        f'are listed for this host'))
            counts[entry.host] = 0          # report the host once
    return out


@dataclasses.dataclass
class SourceView:
    """One extra source's word per host: True = says down, False = says
    up, None = no word (``reasons`` says why, when it is not simply
    absent)."""
    votes: dict[str, bool | None] = dataclasses.field(default_factory=dict)
    values: dict[str, t.Any] = dataclasses.field(default_factory=dict)
    reasons: dict[str, str] = dataclasses.field(default_factory=dict)
    unnamed: list[str] = dataclasses.field(default_factory=list)
    #: the whole answer could not be read: no host has a word
    unreadable: str | None = None


def hypervisor_view(items: list[t.Any]) -> SourceView:
    """Hypervisor state per host: up if any of its nodes is up (ironic
    hosts carry several); down only if every node reads down."""
    view = SourceView()
    states: dict[str, list[t.Any]] = {}
    for item in items:
        if not isinstance(item, dict):
            view.unnamed.append(f'hypervisor entry {quote(item)} is not '
                                f'an object')
            continue
        service = item.get('service')
        host = (_host_of(service, 'host') if isinstance(service, dict)
                else None) or _host_of(item, 'hypervisor_hostname')
        if host is None:
            view.unnamed.append(f'hypervisor entry names no host: '
                                f'{quote(item)}')
            continue
        states.setdefault(host, []).append(item.get('state'))
    for host, seen in states.items():
        bad = [s for s in seen if s not in SERVICE_STATES]
        if 'up' in seen:
            view.votes[host], view.values[host] = False, 'up'
        elif bad:
            view.votes[host], view.values[host] = None, None
            view.reasons[host] = (f'hypervisor state {quote(bad[0])} is '
                                  f'neither up nor down')
        else:
            view.votes[host], view.values[host] = True, 'down'
    return view


def agent_view(items: list[t.Any]) -> SourceView:
    """Network agent liveness per host: alive unless every agent on it
    is dead."""
    view = SourceView()
    alive: dict[str, list[t.Any]] = {}
    for item in items:
        host = _host_of(item, 'host') if isinstance(item, dict) else None
        if host is None:
            view.unnamed.append(f'network agent entry names no host: '
                                f'{quote(item)}')
            continue
        alive.setdefault(host, []).append(item.get('alive'))
    for host, seen in alive.items():
        bad = [a for a in seen if not isinstance(a, bool)]
        if any(a is True for a in seen):
            view.votes[host], view.values[host] = False, True
        elif bad:
            view.votes[host], view.values[host] = None, None
            view.reasons[host] = (f'network agent alive {quote(bad[0])} '
                                  f'is not a boolean')
        else:
            view.votes[host], view.values[host] = True, False
    return view
