"""The nova monitor: compute host state from Nova (and optionally Neutron).

One look = one ``os-services`` call (nova-compute only), plus one
hypervisor list and one network agent list when those checks are enabled:
never a call per host. The lists are read as plain JSON through the
openstacksdk proxies (same session, microversion and error handling):
building 5,000 openstacksdk resources costs ~1.7 s of CPU a look, the JSON
itself ~35 ms. Any data is survived (``nova_answers``): an entry that
cannot be read makes its host ``unknown``, never an exception.
"""
from __future__ import annotations

import datetime
import typing as t

import openstack.connection
from oslo_config import cfg
from oslo_log import log as logging

from freezer_dr import cloud
from freezer_dr import exceptions
from freezer_dr.model import HostObservation
from freezer_dr.monitors import base
from freezer_dr.monitors import nova_answers as answers
from freezer_dr.monitors.nova_answers import COMPUTE_BINARY
from freezer_dr.monitors.nova_answers import list_json

LOG = logging.getLogger(__name__)

RULES = ('service', 'all', 'any')
#: problems kept in a look's notes (and its log line)
MAX_PROBLEMS = 20
T = t.TypeVar('T')
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
        self._logged: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, conf: cfg.ConfigOpts,
                    connection: openstack.connection.Connection,
                    ) -> NovaMonitor:
        group = conf.monitor_nova
        return cls(connection, check_hypervisor=group.check_hypervisor,
                   check_network_agent=group.check_network_agent,
                   rule=group.rule, stale_after=group.stale_after)

    def hosts(self) -> list[HostObservation]:
        try:
            services = self._read('compute services', lambda: list_json(
                self._conn.compute, '/os-services', 'services',
                params={'binary': COMPUTE_BINARY}))
        except answers.MalformedAnswer as exc:
            raise exceptions.MonitorUnavailable(
                f'cannot read compute services: {exc}') from exc
        entries, unnamed = answers.compute_services(services)
        problems = list(unnamed)
        hypervisors = agents = None
        if self._check_hypervisor:
            hypervisors = self._source('hypervisors', lambda: list_json(
                self._conn.compute, '/os-hypervisors/detail', 'hypervisors',
                microversion=HYPERVISOR_MICROVERSION),
                answers.hypervisor_view)
            problems += _source_problems(hypervisors)
        if self._check_network_agent:
            agents = self._source('network agents', lambda: list_json(
                self._conn.network, '/agents', 'agents'), answers.agent_view)
            problems += _source_problems(agents)
        now = self._clock()
        observations = [self._observe(e, hypervisors, agents, now)
                        for e in entries]
        problems += [f'{o.host}: {o.evidence["unknown"]}'
                     for o in observations if o.is_unknown]
        self._note(len(unnamed), problems)
        return observations

    def _observe(self, entry: answers.ServiceEntry,
                 hypervisors: answers.SourceView | None,
                 agents: answers.SourceView | None,
                 now: datetime.datetime) -> HostObservation:
        host = entry.host
        evidence: dict[str, t.Any] = {
            'service_state': _scalar(entry.raw.get('state')),
            'updated_at': _scalar(entry.raw.get('updated_at'))}
        votes: list[bool | None] = []
        for name, view in (('hypervisor_state', hypervisors),
                           ('network_agent_alive', agents)):
            if view is not None:
                votes.append(view.votes.get(host))
                evidence[name] = view.values.get(host)
                why = view.unreadable or view.reasons.get(host)
                if why:
                    evidence[name.rsplit('_', 1)[0] + '_unknown'] = why
        if entry.unknown is not None:
            evidence['unknown'] = entry.unknown
            evidence['service_status'] = _scalar(entry.raw.get('status'))
            return HostObservation(host=host, state='unknown',
                                   evidence=evidence)
        svc_down = service_down(entry.state, entry.updated_at,
                                self._stale_after, now)
        if self._stale_after > 0:
            evidence['stale'] = entry.state == 'up' and svc_down
        return HostObservation(
            host=host, state=entry.state, status=entry.status,
            forced_down=entry.forced_down, updated_at=entry.updated_at,
            disabled_reason=entry.disabled_reason, evidence=evidence,
            down=verdict(self._rule, svc_down, votes))

    def _source(self, what: str, call: t.Callable[[], list[t.Any]],
                view: t.Callable[[list[t.Any]], answers.SourceView],
                ) -> answers.SourceView:
        """An extra source's view; one that cannot be read is no word.

        Except under rule ``all``, where a silent source would let the
        service alone decide what the operator wanted two sources to
        agree on: there an unreachable source (an API error) makes the
        monitor unavailable (fail closed). Nova answers os-hypervisors
        with 500 while any cell is down.
        """
        try:
            items = self._read(what, call)
        except answers.MalformedAnswer as exc:
            return answers.SourceView(unreadable=f'{what}: {exc}')
        except exceptions.MonitorUnavailable as exc:
            if self._rule == 'all':
                raise
            return answers.SourceView(unreadable=str(exc))
        return view(items)

    def _note(self, unnamed: int, problems: list[str]) -> None:
        """Keep this look's notes; log them when they change."""
        self.last_notes = base.LookNotes(unnamed,
                                         tuple(problems[:MAX_PROBLEMS]))
        if tuple(problems) != self._logged:
            self._logged = tuple(problems)
            if problems:
                LOG.warning('Nova monitor: %d problem(s) in this look '
                            '(%d entries name no host): %s', len(problems),
                            unnamed, '; '.join(problems[:MAX_PROBLEMS]))
            else:
                LOG.info('Nova monitor: every entry readable again')

    @staticmethod
    def _read(what: str, call: t.Callable[[], T]) -> T:
        try:
            return call()
        except cloud.API_ERRORS as exc:
            raise exceptions.MonitorUnavailable(
                f'cannot read {what}: {cloud.describe_error(exc)}') from exc


def _source_problems(view: answers.SourceView) -> list[str]:
    out = list(view.unnamed)
    if view.unreadable:
        out.append(view.unreadable)
    out += [f'{host}: {why}' for host, why in sorted(view.reasons.items())]
    return out


def _scalar(value: t.Any) -> t.Any:
    """``value`` if JSON-simple, else its short repr (for evidence)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    return answers.quote(value)
