"""The nova monitor: compute host state from Nova (and optionally Neutron).

One look = one ``os-services`` call (nova-compute only), plus one
hypervisor list and one network agent list when those checks are enabled:
never a call per host. The lists are read as plain JSON through the
openstacksdk proxies (same session, microversion and error handling):
building 5,000 openstacksdk resources costs ~1.7 s of CPU a look, the JSON
itself ~35 ms.
"""
from __future__ import annotations

import datetime
import typing as t

import openstack.connection
import openstack.exceptions as sdk_exc
from oslo_config import cfg
from oslo_log import log as logging

from freezer_dr import cloud
from freezer_dr import exceptions
from freezer_dr.engine.model import HostObservation
from freezer_dr.monitors import base

LOG = logging.getLogger(__name__)

RULES = ('service', 'all', 'any')
COMPUTE_BINARY = 'nova-compute'
#: Hypervisor details are read at 2.87 on purpose: from 2.88 Nova fills
#: ``uptime`` by a synchronous RPC call to every compute whose stats lack
#: it, and a compute that just died but still counts as up makes that
#: call (and the whole list) hang: exactly when the monitor must answer.
HYPERVISOR_MICROVERSION = '2.87'


def service_down(state: str, updated_at: str | None, stale_after: float,
                 now: datetime.datetime) -> bool:
    """Nova says down, or (``stale_after`` > 0) the heartbeat is too old."""
    if state != 'up':
        return True
    if stale_after <= 0:
        return False
    stamp = cloud.parse_time(updated_at)
    if stamp is None:
        return False
    return (now - stamp).total_seconds() > stale_after


def verdict(rule: str, service_is_down: bool,
            other_votes: t.Iterable[bool | None]) -> bool:
    """Combine the sources' votes (None = that source has no word).

    ``service``: the service alone; ``all``: the service and every other
    source that has a word; ``any``: one source saying down suffices.
    """
    votes = [vote for vote in other_votes if vote is not None]
    if rule == 'service':
        return service_is_down
    if rule == 'all':
        return service_is_down and all(votes)
    if rule == 'any':
        return service_is_down or any(votes)
    raise ValueError(f'unknown rule {rule!r}; expected one of '
                     f'{", ".join(RULES)}')


def list_json(proxy: t.Any, path: str, key: str,
              params: dict[str, str] | None = None,
              microversion: str | None = None,
              max_pages: int = 1000) -> list[dict[str, t.Any]]:
    """Every item of a list API as plain dicts, following ``<key>_links``
    pagination (Nova pages hypervisors by ``[api] max_limit``)."""
    items: list[dict[str, t.Any]] = []
    url: str | None = path
    for _ in range(max_pages):
        extra = {'microversion': microversion} if microversion else {}
        response = proxy.get(url, params=params, **extra)
        sdk_exc.raise_from_response(response)
        try:
            body = response.json()
        except ValueError:
            raise sdk_exc.SDKException(f'{path}: answer is not JSON')
        items.extend(body.get(key) or [])
        links = body.get(f'{key}_links') or []
        url = next((link.get('href') for link in links
                    if link.get('rel') == 'next'), None)
        if not url:
            return items
        params = None             # the next link carries the query
    raise sdk_exc.SDKException(f'{path}: more than {max_pages} pages')


class NovaMonitor(base.Monitor):
    """Reports every nova-compute host; raises when Nova cannot be read."""

    def __init__(self, connection: openstack.connection.Connection,
                 check_hypervisor: bool = False,
                 check_network_agent: bool = False,
                 rule: str = 'service', stale_after: float = 0.0,
                 clock: t.Callable[[], datetime.datetime] | None = None):
        if rule not in RULES:
            raise exceptions.ConfigError(
                f'[monitor_nova] rule: {rule!r} is not one of '
                f'{", ".join(RULES)}')
        self._conn = connection
        self._check_hypervisor = check_hypervisor
        self._check_network_agent = check_network_agent
        self._rule = rule
        self._stale_after = stale_after
        self._clock = clock or (
            lambda: datetime.datetime.now(datetime.timezone.utc))

    @classmethod
    def from_config(cls, conf: cfg.ConfigOpts,
                    connection: openstack.connection.Connection,
                    ) -> NovaMonitor:
        group = conf.monitor_nova
        return cls(connection, check_hypervisor=group.check_hypervisor,
                   check_network_agent=group.check_network_agent,
                   rule=group.rule, stale_after=group.stale_after)

    def hosts(self) -> list[HostObservation]:
        services = self._read('compute services', lambda: list_json(
            self._conn.compute, '/os-services', 'services',
            params={'binary': COMPUTE_BINARY}))
        hypervisors = (self._read('hypervisors', self._hypervisor_states)
                       if self._check_hypervisor else {})
        agents = (self._read('network agents', self._agent_liveness)
                  if self._check_network_agent else {})
        now = self._clock()
        return [self._observe(svc, hypervisors, agents, now)
                for svc in services
                if svc.get('binary', COMPUTE_BINARY) == COMPUTE_BINARY]

    def _observe(self, svc: dict[str, t.Any], hypervisors: dict[str, str],
                 agents: dict[str, bool], now: datetime.datetime,
                 ) -> HostObservation:
        host, state = svc['host'], svc['state']
        updated_at = svc.get('updated_at')
        evidence: dict[str, t.Any] = {'service_state': state,
                                      'updated_at': updated_at}
        svc_down = service_down(state, updated_at, self._stale_after, now)
        if self._stale_after > 0:
            evidence['stale'] = state == 'up' and svc_down
        votes: list[bool | None] = []
        if self._check_hypervisor:
            hyp_state = hypervisors.get(host)
            evidence['hypervisor_state'] = hyp_state
            votes.append(None if hyp_state is None else hyp_state != 'up')
        if self._check_network_agent:
            alive = agents.get(host)
            evidence['network_agent_alive'] = alive
            votes.append(None if alive is None else not alive)
        return HostObservation(
            host=host, state=state, status=svc.get('status', 'enabled'),
            forced_down=bool(svc.get('forced_down')),
            updated_at=updated_at,
            disabled_reason=svc.get('disabled_reason'), evidence=evidence,
            down=verdict(self._rule, svc_down, votes))

    def _hypervisor_states(self) -> dict[str, str]:
        states: dict[str, str] = {}
        for hyp in list_json(self._conn.compute, '/os-hypervisors/detail',
                             'hypervisors',
                             microversion=HYPERVISOR_MICROVERSION):
            host = ((hyp.get('service') or {}).get('host')
                    or hyp.get('hypervisor_hostname'))
            # One host may carry several nodes (ironic): up if any is up.
            if states.get(host) != 'up':
                states[host] = hyp.get('state')
        return states

    def _agent_liveness(self) -> dict[str, bool]:
        """Per host: alive unless every agent on it is dead."""
        alive: dict[str, bool] = {}
        for agent in list_json(self._conn.network, '/agents', 'agents'):
            host = agent.get('host')
            alive[host] = alive.get(host, False) or bool(agent.get('alive'))
        return alive

    @staticmethod
    def _read(what: str, call: t.Callable[[], t.Any]) -> t.Any:
        try:
            return call()
        except cloud.API_ERRORS as exc:
            raise exceptions.MonitorUnavailable(
                f'cannot read {what}: {cloud.describe_error(exc)}') from exc
