"""The nova evacuator: isolate a host and move its servers with Nova.

Every request carries one explicit compute microversion (2.94 by default:
the last one where an evacuated ACTIVE server is restarted). Each write
(force-down, disable, evacuate, start / stop) is one call with one
deadline of the API timeout covering any Keystone re-authentication,
version discovery and the request itself; the caller's guard runs after
all of that, immediately before the write goes on the wire, and past the
deadline the write is abandoned unsent. Each read request ends, answer
read in full, within the API timeout. A read, or a write that sets a
state (force-down, disable, enable), that Nova answers with a server
error (5xx) is sent again after 0.5 s, then 1 s; an evacuation never
is. openstacksdk and keystoneauth
errors become ``EvacuationFailed`` (Nova refused: 4xx, with Nova's
message) or ``CloudUnavailable`` (5xx, timeouts, deadline passed,
connection failures: retry later).
"""
from __future__ import annotations

import datetime
import typing as t

import openstack.connection
import openstack.exceptions as sdk_exc
from oslo_config import cfg
from oslo_log import log as logging

from freezer_dr import cloud
from freezer_dr import deadline_http
from freezer_dr import exceptions
from freezer_dr.deadline import Deadline
from freezer_dr.deadline import DeadlineExceeded
from freezer_dr.evacuators import base
from freezer_dr.model import Instance

LOG = logging.getLogger(__name__)

COMPUTE_BINARY = 'nova-compute'
DEFAULT_API_TIMEOUT = 5.0
T = t.TypeVar('T')
Guard = t.Callable[[], None]


#: the status Nova gives what it cannot read (a server in a down cell)
UNKNOWN = 'UNKNOWN'


def to_instance(server: t.Any) -> Instance:
    """An openstacksdk Server as an :class:`Instance` snapshot.

    A server Nova lists as ``UNKNOWN`` (its cell is unreachable) raises
    CloudUnavailable (ask again later); one whose fields cannot be read
    raises EvacuationFailed. Never a KeyError or AttributeError.
    """
    try:
        fields = {'id': server.id, 'name': server.name,
                  'project_id': server.project_id,
                  'user_id': server.user_id, 'status': server.status,
                  'host': server.compute_host,
                  'task_state': server.task_state,
                  'metadata': server.metadata, 'tags': server.tags}
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise exceptions.EvacuationFailed(
            f'unreadable server entry: {type(exc).__name__}: {exc}') from exc
    sid = fields['id']
    if not isinstance(sid, str) or not sid:
        raise exceptions.EvacuationFailed(
            f'server entry without an id: {sid!r}')
    if fields['status'] == UNKNOWN:
        raise exceptions.CloudUnavailable(
            f'server {sid}: Nova cannot read it (status UNKNOWN: its cell '
            f'is unreachable)')
    wrong = [name for name, kind in (
        ('status', str), ('project_id', str), ('name', (str, type(None))),
        ('user_id', (str, type(None))), ('host', (str, type(None))),
        ('task_state', (str, type(None))),
        ('metadata', (dict, type(None))), ('tags', (list, type(None))))
        if not isinstance(fields[name], kind)
        or (kind is str and not fields[name])]
    if wrong:
        raise exceptions.EvacuationFailed(
            f'server {sid}: unreadable {", ".join(wrong)} '
            f'({", ".join(repr(fields[n])[:40] for n in wrong)})')
    return Instance(
        id=sid, name=fields['name'] or '',
        project_id=fields['project_id'], user_id=fields['user_id'],
        status=fields['status'], host=fields['host'],
        task_state=fields['task_state'],
        metadata={str(k): str(v)
                  for k, v in (fields['metadata'] or {}).items()},
        tags=[str(tag) for tag in fields['tags'] or []])


#: from this microversion an evacuated server is left stopped
STOPPED_EVACUATION = '2.95'


def _version(text: t.Any) -> tuple[int, ...]:
    """``'2.95'`` or ``(2, 95)`` -> ``(2, 95)``; anything else sorts
    lowest."""
    if isinstance(text, tuple):
        return tuple(int(x) for x in text)
    try:
        return tuple(int(x) for x in str(text).split('.'))
    except ValueError:
        return (0,)



class NovaEvacuator(base.Evacuator):
    """Isolates hosts and evacuates servers through the compute API."""

    def __init__(self, connection: openstack.connection.Connection,
                 microversion: str = '2.94',
                 api_timeout: float | None = None):
        """``api_timeout`` (default: the connection's timeout) bounds each
        write as a whole, re-authentication included."""
        # Read from the configuration: touching connection.compute would
        # run version discovery (network) here.
        actual = connection.config.get_api_version('compute')
        if actual != microversion:
            raise exceptions.ConfigError(
                f'[cloud] compute_microversion: the connection uses compute '
                f'microversion {actual!r}, not {microversion!r}; build it '
                f'with freezer_dr.cloud.connect')
        self._conn = connection
        self._max_microversion: t.Any = None     # Nova's, asked once
        self.microversion = microversion
        self.api_timeout = (api_timeout or connection.session.timeout
                            or DEFAULT_API_TIMEOUT)
        cloud.bound_requests(connection, self.api_timeout)

    @classmethod
    def from_config(cls, conf: cfg.ConfigOpts,
                    connection: openstack.connection.Connection | None = None,
                    ) -> NovaEvacuator:
        """From ``[cloud]``. The given connection is used when its
        timeout is ``[cloud] api_timeout``; otherwise (or without one) a
        connection with that timeout is built."""
        group = conf.cloud
        if (connection is None
                or connection.session.timeout != group.api_timeout):
            connection = cloud.connect(conf, api_timeout=group.api_timeout)
        return cls(connection, microversion=group.compute_microversion,
                   api_timeout=group.api_timeout)

    @property
    def _compute(self) -> t.Any:
        """The compute proxy (created, with discovery, on first use)."""
        return self._conn.compute

    # -- hosts ----------------------------------------------------------

    def isolate(self, host: str, reason: str,
                guard: Guard | None = None) -> None:
        """Force the compute service down, then disable it with ``reason``.

        Forcing down first matters: disabling a service Nova still counts
        as up makes Nova call the (dead) compute and the API call hangs.
        A service already forced down or disabled is left as it is. Each
        of the two writes is bounded and guarded as :meth:`evacuate`.
        """
        svc = self._service(host)
        if not svc.is_forced_down:
            self._write(f'force down {host}',
                        lambda: self._compute.update_service_forced_down(
                            svc, forced=True), guard, sets_state=True)
            LOG.info('Forced down the compute service of %s', host)
        if svc.status != 'disabled':
            self._write(f'disable {host}',
                        lambda: self._compute.disable_service(
                            svc, disabled_reason=reason), guard,
                        sets_state=True)
            LOG.info('Disabled the compute service of %s: %s', host, reason)
        else:
            LOG.info('Compute service of %s already disabled (%s)', host,
                     svc.disabled_reason)

    def enable(self, host: str) -> None:
        """Clear force-down, then enable the compute service of ``host``
        (an operator's request: each write bounded, no lease guard)."""
        svc = self._service(host)
        if svc.is_forced_down:
            self._write(f'clear force down of {host}',
                        lambda: self._compute.update_service_forced_down(
                            svc, forced=False), None,
                        sets_state=True)
        if svc.status != 'enabled':
            self._write(f'enable {host}',
                        lambda: self._compute.enable_service(svc), None,
                        sets_state=True)
        LOG.info('Compute service of %s returned to service', host)

    def _service(self, host: str) -> t.Any:
        services = self._call(f'read the compute service of {host}',
                              lambda: list(self._compute.services(
                                  binary=COMPUTE_BINARY, host=host)))
        services = [s for s in services if s.host == host]
        if len(services) != 1:
            raise exceptions.EvacuationFailed(
                f'expected one {COMPUTE_BINARY} service on {host}, '
                f'found {len(services)}')
        if services[0].status == UNKNOWN or not services[0].id:
            raise exceptions.CloudUnavailable(
                f'the compute service of {host} cannot be read (status '
                f'{services[0].status}: its cell is unreachable)')
        return services[0]

    # -- servers --------------------------------------------------------

    def instances(self, host: str) -> list[Instance]:
        """Every server on ``host``. Nova leaves a down cell's servers
        out of a filtered list: the host's service is read first, so a
        host in a down cell is CloudUnavailable, never an empty list."""
        self._service(host)
        try:
            servers = self._call(f'list servers of {host}', lambda: list(
                self._compute.servers(details=True, all_projects=True,
                                      compute_host=host)))
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise exceptions.CloudUnavailable(
                f'cannot list servers of {host}: unreadable answer '
                f'({type(exc).__name__}: {exc})') from exc
        # Guard against a filter the endpoint ignored.
        return [to_instance(s) for s in servers
                if getattr(s, 'compute_host', None) == host]

    def status(self, instance_id: str) -> Instance:
        return to_instance(self._call(
            f'read server {instance_id}',
            lambda: self._compute.get_server(instance_id)))

    def evacuate(self, instance_id: str, guard: Guard | None = None,
                 keep_stopped: bool = False) -> None:
        """Ask Nova to rebuild the server elsewhere (scheduler's choice).

        Over, sent or abandoned unsent, within ``api_timeout``; ``guard``
        runs after any re-authentication and right before the request.
        ``keep_stopped`` (a server that was SHUTOFF): evacuate at
        microversion 2.95 when Nova offers it, so the server is rebuilt
        stopped rather than started and stopped again.
        """
        if keep_stopped and self._offers(STOPPED_EVACUATION):
            def call():
                response = self._compute.post(
                    f'/servers/{instance_id}/action',
                    json={'evacuate': {}}, microversion=STOPPED_EVACUATION)
                sdk_exc.raise_from_response(response)
        else:
            def call():
                self._compute.evacuate_server(instance_id)
        self._write(f'evacuate {instance_id}', call, guard)
        LOG.info('Evacuation of %s requested%s', instance_id,
                 ' (kept stopped)' if keep_stopped else '')

    def _offers(self, microversion: str) -> bool:
        """Whether the compute API supports ``microversion`` (asked once;
        an error answers no: the default microversion always works)."""
        if self._max_microversion is None:
            try:
                data = self._compute.get_endpoint_data()
                self._max_microversion = getattr(
                    data, 'max_microversion', None) or ''
            except cloud.API_ERRORS:
                return False
        return _version(self._max_microversion) >= _version(microversion)

    def evacuations(self, instance_id: str, since: float) -> list[dict]:
        """Evacuation migrations of the server created after ``since``.

        Oldest first; each a dict with id, status, source_compute,
        dest_compute, created_at (Nova's text) and created_ts (epoch s).
        """
        since_dt = datetime.datetime.fromtimestamp(
            since, tz=datetime.timezone.utc)
        migrations = self._call(
            f'list evacuations of {instance_id}',
            # No changes-since: Nova applies it to updated_at, which is
            # NULL on a fresh ('accepted') migration, the very one a new
            # leader must not miss.
            lambda: list(self._compute.migrations(
                server_id=instance_id, migration_type='evacuation')))
        found = []
        for mig in migrations:
            created = cloud.parse_time(mig.created_at)
            if (mig.server_id != instance_id
                    or mig.migration_type not in (None, 'evacuation')
                    or created is None or created < since_dt):
                continue
            found.append({
                'id': mig.uuid or mig.id, 'status': mig.status,
                'source_compute': mig.source_compute,
                'dest_compute': mig.dest_compute,
                'created_at': mig.created_at,
                'created_ts': created.timestamp()})
        return sorted(found, key=lambda m: m['created_ts'])

    def set_power(self, instance_id: str, on: bool,
                  guard: Guard | None = None) -> None:
        """Start (``on``) or stop the server; already there is fine.

        Bounded and guarded as :meth:`evacuate`.
        """
        wanted = 'ACTIVE' if on else 'SHUTOFF'
        verb = 'start' if on else 'stop'
        try:
            self._bounded_write(lambda: getattr(
                self._compute, f'{verb}_server')(instance_id), guard)
        except cloud.API_ERRORS as exc:
            if cloud.http_status(exc) != 409:
                raise self._translate(f'{verb} {instance_id}', exc) from exc
            now = self.status(instance_id)
            if now.status != wanted or now.task_state is not None:
                raise self._translate(f'{verb} {instance_id}', exc) from exc
            LOG.debug('Server %s already %s', instance_id, wanted)
            return
        LOG.info('Server %s: %s requested', instance_id, verb)

    # -- call plumbing --------------------------------------------------

    def _call(self, what: str, call: t.Callable[[], T]) -> T:
        """A read: each of its requests ends within the API timeout; one
        that Nova answers with a server error is asked again (twice)."""
        try:
            return cloud.retry_server_errors(call)
        except cloud.API_ERRORS as exc:
            raise self._translate(what, exc) from exc

    def _write(self, what: str, call: t.Callable[[], T],
               guard: Guard | None, sets_state: bool = False) -> T:
        """A write; one that ``sets_state`` (the same again is harmless)
        is sent again when Nova answers with a server error."""
        def once() -> T:
            return self._bounded_write(call, guard)
        try:
            return cloud.retry_server_errors(once) if sets_state else once()
        except cloud.API_ERRORS as exc:
            raise self._translate(what, exc) from exc

    def _bounded_write(self, call: t.Callable[[], T],
                       guard: Guard | None) -> T:
        """``call()`` within one deadline of ``api_timeout``.

        Authenticates and discovers the endpoint first, so the guard
        (called by the transport right before the write is sent, again
        should keystoneauth re-authenticate and resend) follows any other
        I/O. API errors pass through untranslated; a passed deadline
        raises DeadlineExceeded naming what became of the write.
        """
        with Deadline(self.api_timeout) as deadline, \
                deadline_http.bounded(deadline, guard) as scope:
            try:
                self._conn.session.get_auth_headers()
                self._compute.get_endpoint()
                return call()
            except DeadlineExceeded as exc:
                raise DeadlineExceeded(
                    f'timed out, no complete answer within '
                    f'{self.api_timeout:g} s: {scope.outcome()}') from exc

    @staticmethod
    def _translate(what: str, exc: BaseException,
                   ) -> exceptions.FreezerDRError:
        message = f'cannot {what}: {cloud.describe_error(exc)}'
        if cloud.is_refusal(exc):
            return exceptions.EvacuationFailed(message)
        return exceptions.CloudUnavailable(message)
