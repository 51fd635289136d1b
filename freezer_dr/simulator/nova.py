"""The simulated Nova compute API v2.1 (the calls freezer-dr makes).

Routes: versions, ``os-services`` (list, 2.53 update by id and the older
``force-down`` / ``disable`` / ``disable-log-reason`` / ``enable``
actions), ``os-hypervisors``, ``servers`` (list, detail, show, actions
evacuate / os-start / os-stop) and ``os-migrations``. Errors use Nova's
fault bodies (``badRequest``, ``itemNotFound``, ``conflictingRequest``,
``computeFault``...). Tokens are checked against the simulated Keystone.
"""
from __future__ import annotations

import dataclasses
import time
import typing as t
import urllib.parse
import uuid

from freezer_dr.simulator import actions
from freezer_dr.simulator import microversion as mv
from freezer_dr.simulator import nova_views as views
from freezer_dr.simulator import records as rec
from freezer_dr.simulator.identity import UNAUTHORIZED
from freezer_dr.simulator.identity import Identity
from freezer_dr.simulator.state import ApiError
from freezer_dr.simulator.state import Compute
from freezer_dr.simulator.wsgi import JsonApp
from freezer_dr.simulator.wsgi import Request
from freezer_dr.simulator.wsgi import Result

FAULT_NAMES = {400: 'badRequest', 401: 'unauthorized', 403: 'forbidden',
               404: 'itemNotFound', 405: 'badMethod',
               409: 'conflictingRequest', 413: 'overLimit',
               415: 'badMediaType', 429: 'overLimit',
               501: 'notImplemented', 503: 'serviceUnavailable'}
MAX_LIMIT = 1000
API_BINARIES = ('nova-osapi_compute', 'nova-metadata')
TRUE = ('1', 't', 'true', 'on', 'y', 'yes')
FALSE = ('0', 'f', 'false', 'off', 'n', 'no')


@dataclasses.dataclass
class Context:
    """Who is calling, and with which microversion."""
    user_id: str
    project_id: str | None
    admin: bool
    version: mv.Version


def strict_bool(value: t.Any, field: str) -> bool:
    """oslo's bool_from_string(strict=True), with Nova's 400."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ApiError(400, f"Invalid input for field/attribute {field}. "
                        f"Value: {value}. Unrecognized value '{value}', "
                        f"acceptable values are: '0', '1', 'f', 'false', "
                        f"'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'")


class NovaApp(JsonApp):
    """Nova v2.1 over WSGI."""

    api_name = 'nova'

    def __init__(self, compute: Compute, identity: Identity) -> None:
        super().__init__(compute.faults)
        self.compute = compute
        self.identity = identity
        r = self.route
        r('GET', '/', self.versions)
        r('GET', '/v2.1', self.version)
        p = '/v2.1'
        r('GET', p + '/os-services', self.list_services)
        r('PUT', p + '/os-services/{service_id}', self.update_service)
        r('GET', p + '/os-hypervisors', self.list_hypervisors)
        r('GET', p + '/os-hypervisors/detail', self.list_hypervisors)
        r('GET', p + '/os-hypervisors/{pattern}/servers',
          self.hypervisor_servers)
        r('GET', p + '/servers', self.list_servers)
        r('GET', p + '/servers/detail', self.list_servers)
        r('GET', p + '/servers/{server_id}', self.show_server)
        r('POST', p + '/servers/{server_id}/action', self.server_action)
        r('GET', p + '/os-migrations', self.list_migrations)
        r('GET', p + '/flavors/{flavor_id}', self.show_flavor)

    # -- plumbing ------------------------------------------------------------
    def error(self, status: int, message: str) -> Result:
        name = FAULT_NAMES.get(status, 'computeFault')
        return status, {name: {'code': status, 'message': message}}, {}

    def before(self, req: Request, handler: t.Any) -> Result | None:
        version = mv.requested(req.header('OpenStack-API-Version'),
                               req.header('X-OpenStack-Nova-API-Version'))
        req.context = Context('', None, False, version)
        if handler in (self.versions, self.version):
            return None
        token = self.identity.validate(req.header('X-Auth-Token'))
        if token is None:
            return 401, {'error': {'code': 401, 'title': 'Unauthorized',
                                   'message': UNAUTHORIZED}}, {
                'WWW-Authenticate': "Keystone uri='{}'".format(
                    req.url('/identity'))}
        roles = self.identity.roles_of(token.user_id, token.project_id)
        req.context = Context(token.user_id, token.project_id,
                              any(r.name == 'admin' for r in roles), version)
        return None

    def after(self, req: Request, result: Result) -> Result:
        ctx = req.context
        if isinstance(ctx, Context) and req.path.startswith('/v2.1/'):
            status, body, headers = result
            return status, body, {**headers,
                                  **mv.response_headers(ctx.version)}
        return result

    def dispatch(self, req: Request) -> Result:
        # a bad microversion header is an error even for unknown routes
        if req.path.startswith('/v2.1/'):
            mv.requested(req.header('OpenStack-API-Version'),
                         req.header('X-OpenStack-Nova-API-Version'))
        return super().dispatch(req)

    @staticmethod
    def _policy(req: Request, rule: str) -> Context:
        ctx: Context = req.context
        if not ctx.admin:
            raise ApiError(403, f"Policy doesn't allow {rule} to be "
                                f"performed.")
        return ctx

    def _base(self, req: Request) -> str:
        return req.url('')

    # -- versions ------------------------------------------------------------
    def _v21(self, req: Request) -> dict[str, t.Any]:
        return {'id': 'v2.1', 'status': 'CURRENT',
                'version': mv.fmt(mv.MAX_VERSION),
                'min_version': mv.fmt(mv.MIN_VERSION),
                'updated': '2013-07-23T11:33:21Z',
                'links': [{'rel': 'self', 'href': req.url('/v2.1/')}]}

    def versions(self, req: Request) -> Result:
        v20 = {'id': 'v2.0', 'status': 'SUPPORTED', 'version': '',
               'min_version': '', 'updated': '2011-01-21T11:33:21Z',
               'links': [{'rel': 'self', 'href': req.url('/v2/')}]}
        return 200, {'versions': [v20, self._v21(req)]}, {}

    def version(self, req: Request) -> Result:
        doc = self._v21(req)
        doc['media-types'] = [{
            'base': 'application/json',
            'type': 'application/vnd.openstack.compute+json;version=2.1'}]
        return 200, {'version': doc}, {}

    # -- services ------------------------------------------------------------
    def list_services(self, req: Request) -> Result:
        ctx = self._policy(req, 'os_compute_api:os-services:list')
        host = req.query.get('host')
        binary = req.query.get('binary')
        now = time.time()
        with self.compute.lock:
            out = [views.service(self.compute, s, ctx.version, now)
                   for s in self.compute.services
                   if s.binary not in API_BINARIES
                   and (not host or s.host == host)
                   and (not binary or s.binary == binary)]
        return 200, {'services': out}, {}

    def _service_by_host(self, host: str, binary: str) -> rec.Service:
        for svc in self.compute.services:
            if svc.host == host and svc.binary == binary:
                return svc
        raise ApiError(404, f'Could not find binary {binary} on host '
                            f'{host}.')

    def _check_for_evacuations(self, host: str) -> None:
        if any(m.source_compute == host and m.status == 'done'
               and m.migration_type == 'evacuation'
               for m in self.compute.migrations):
            raise ApiError(
                400, f'Unable to force up host {host} as `done` evacuation '
                     f'migration records remain associated with the host. '
                     f'Ensure the compute service has been restarted, '
                     f'allowing these records to move to `completed` '
                     f'before retrying this request.')

    def update_service(self, req: Request, service_id: str) -> Result:
        ctx = self._policy(req, 'os_compute_api:os-services:update')
        body = req.json()
        if not isinstance(body, dict):
            raise ApiError(400, 'Malformed request body')
        with self.compute.lock:
            if ctx.version >= (2, 53):
                return self._update_v253(req, ctx, service_id, body)
            return self._update_action(ctx, service_id, body)

    def _update_v253(self, req: Request, ctx: Context, service_id: str,
                     body: dict[str, t.Any]) -> Result:
        svc = next((s for s in self.compute.services
                    if s.uuid == service_id), None)
        if not _is_uuid(service_id):
            raise ApiError(400, f'Invalid uuid {service_id}')
        if svc is None:
            raise ApiError(404, f'Service {service_id} could not be found.')
        if svc.binary != rec.COMPUTE_BINARY:
            raise ApiError(400, f'Updating a {svc.binary} service is not '
                                f'supported. Only nova-compute services '
                                f'can be updated.')
        unknown = set(body) - {'status', 'disabled_reason', 'forced_down'}
        if unknown or body.get('status', 'enabled') not in (
                'enabled', 'disabled'):
            raise ApiError(400, f'Invalid input for field/attribute '
                                f'service. Value: {body}.')
        disabled = None
        if body.get('status') == 'enabled':
            if body.get('disabled_reason'):
                raise ApiError(400, "Specifying 'disabled_reason' with "
                                    "status 'enabled' is invalid.")
            disabled = False
        elif body.get('status') == 'disabled':
            disabled = True
        elif 'disabled_reason' in body:
            raise ApiError(400, "Invalid input for field/attribute "
                                "service. 'disabled_reason' requires "
                                "'status'.")
        forced = None
        if 'forced_down' in body:
            forced = strict_bool(body['forced_down'], 'forced_down')
            if forced is False:
                self._check_for_evacuations(svc.host)
        if disabled is None and forced is None:
            raise ApiError(400, "No updates were requested. Fields 'status' "
                                "or 'forced_down' should be specified.")
        actions.update_service(self.compute, svc, disabled=disabled,
                               reason=body.get('disabled_reason'),
                               forced_down=forced)
        return 200, {'service': views.service(
            self.compute, svc, ctx.version, time.time())}, {}

    def _update_action(self, ctx: Context, action: str,
                       body: dict[str, t.Any]) -> Result:
        allowed = ['enable', 'disable', 'disable-log-reason']
        if ctx.version >= (2, 11):
            allowed.append('force-down')
        if action not in allowed:
            raise ApiError(404, 'Unknown action')
        try:
            host, binary = body['host'], body['binary']
        except KeyError as exc:
            raise ApiError(400, f"Invalid input for field/attribute "
                                f"{action}. '{exc.args[0]}' is a required "
                                f"property")
        if action == 'force-down':
            if 'forced_down' not in body:
                raise ApiError(400, 'Missing forced_down field')
            forced = strict_bool(body['forced_down'], 'forced_down')
            if binary == rec.COMPUTE_BINARY and forced is False:
                self._check_for_evacuations(host)
            svc = self._service_for_update(host, binary)
            actions.update_service(self.compute, svc, forced_down=forced)
            return 200, {'service': {'host': host, 'binary': binary,
                                     'forced_down': forced}}, {}
        reason = None
        if action == 'disable-log-reason':
            if 'disabled_reason' not in body:
                raise ApiError(400, 'Missing disabled reason field')
            reason = body['disabled_reason']
        svc = self._service_for_update(host, binary)
        disabled = action != 'enable'
        actions.update_service(self.compute, svc, disabled=disabled,
                               reason=reason)
        out = {'host': host, 'binary': binary,
               'status': 'disabled' if disabled else 'enabled'}
        if reason:
            out['disabled_reason'] = reason
        return 200, {'service': out}, {}

    def _service_for_update(self, host: str, binary: str) -> rec.Service:
        if binary != rec.COMPUTE_BINARY:
            raise ApiError(400, f'Updating a {binary} service is not '
                                f'supported. Only nova-compute services '
                                f'can be updated.')
        return self._service_by_host(host, binary)

    # -- hypervisors ---------------------------------------------------------
    def list_hypervisors(self, req: Request) -> Result:
        ctx = self._policy(req, 'os_compute_api:os-hypervisors:list-detail')
        detail = req.path.rstrip('/').endswith('/detail')
        with_servers = False
        pattern = None
        if ctx.version >= (2, 53):
            with_servers = strict_bool(
                req.query.get('with_servers', 'false'), 'with_servers')
            pattern = req.query.get('hypervisor_hostname_pattern')
        now = time.time()
        with self.compute.lock:
            hosts = [h for h in self.compute.hosts.values()
                     if pattern is None or pattern in h.name]
            if pattern is not None and not hosts:
                raise ApiError(404, f"No hypervisor matching '{pattern}' "
                                    f"could be found.")
            out = [views.hypervisor(
                self.compute, h, ctx.version, now, detail,
                self._servers_on(h.name) if with_servers else None)
                for h in hosts]
        return 200, {'hypervisors': out}, {}

    def _servers_on(self, host: str) -> list[rec.Server]:
        return [self.compute.servers[i]
                for i in sorted(self.compute.by_host[host])]

    def hypervisor_servers(self, req: Request, pattern: str) -> Result:
        ctx = self._policy(req, 'os_compute_api:os-hypervisors:servers')
        if ctx.version >= (2, 53):
            raise ApiError(404, 'The resource could not be found.')
        now = time.time()
        with self.compute.lock:
            hosts = [h for h in self.compute.hosts.values()
                     if pattern in h.name]
            if not hosts:
                raise ApiError(404, f"No hypervisor matching '{pattern}' "
                                    f"could be found.")
            out = [views.hypervisor(self.compute, h, ctx.version, now,
                                    False, self._servers_on(h.name))
                   for h in hosts]
        return 200, {'hypervisors': out}, {}

    # -- servers -------------------------------------------------------------
    def _visible(self, req: Request, ctx: Context) -> list[rec.Server]:
        q = req.query
        all_tenants = False
        if 'all_tenants' in q:
            all_tenants = q['all_tenants'] == '' or strict_bool(
                q['all_tenants'], 'all_tenants')
        if all_tenants and not ctx.admin:
            raise ApiError(403, "Policy doesn't allow os_compute_api:"
                                "servers:index:get_all_tenants to be "
                                "performed.")
        project = (q.get('project_id') or q.get('tenant_id')
                   if all_tenants else ctx.project_id)
        host = q.get('host') if ctx.admin else None
        node = q.get('node') if ctx.admin else None
        vm_state = None
        if 'status' in q:
            vm_state = rec.STATUS_TO_VM_STATE.get(q['status'].upper())
            if vm_state is None:
                return []
        if host is not None or node is not None:
            ids = self.compute.by_host.get(host or node or '', set())
            pool = [self.compute.servers[i] for i in ids]
            pool.sort(key=lambda s: s.created_at)
        else:
            pool = list(self.compute.servers.values())
        name = q.get('name')
        uuid = q.get('uuid')
        out = []
        for s in reversed(pool):       # newest first, as Nova sorts
            if project and s.project_id != project:
                continue
            if vm_state and s.vm_state != vm_state:
                continue
            if name and name not in s.name:
                continue
            if uuid and s.id != uuid:
                continue
            out.append(s)
        return out

    def list_servers(self, req: Request) -> Result:
        ctx: Context = req.context
        detail = req.path.rstrip('/').endswith('/detail')
        limit = _limit(req.query.get('limit'))
        marker = req.query.get('marker')
        now = time.time()
        base = self._base(req)
        with self.compute.lock:
            servers = self._visible(req, ctx)
            if marker is not None:
                pos = next((i for i, s in enumerate(servers)
                            if s.id == marker), None)
                if pos is None:
                    raise ApiError(400, f'marker [{marker}] not found')
                servers = servers[pos + 1:]
            page = servers[:limit]
            if detail:
                out = [views.server(base, self.compute, s, ctx.version,
                                    ctx.admin, now) for s in page]
            else:
                out = [views.server_brief(base, s) for s in page]
        body: dict[str, t.Any] = {'servers': out}
        if len(page) == limit and page:
            query = {k: v for k, v in req.query.items() if k != 'marker'}
            query.update(limit=str(limit), marker=page[-1].id)
            body['servers_links'] = [{'rel': 'next', 'href': req.url(
                req.path + '?' + urllib.parse.urlencode(query))}]
        return 200, body, {}

    def show_server(self, req: Request, server_id: str) -> Result:
        ctx: Context = req.context
        with self.compute.lock:
            server = self.compute.server(server_id)
            if not ctx.admin and server.project_id != ctx.project_id:
                raise ApiError(404, f'Instance {server_id} could not be '
                                    f'found.')
            return 200, {'server': views.server(
                self._base(req), self.compute, server, ctx.version,
                ctx.admin, time.time())}, {}

    def server_action(self, req: Request, server_id: str) -> Result:
        ctx: Context = req.context
        body = req.json()
        if not isinstance(body, dict) or len(body) != 1:
            raise ApiError(400, 'Malformed request body')
        (name, args), = body.items()
        with self.compute.lock:
            server = self.compute.server(server_id)
            if not ctx.admin and server.project_id != ctx.project_id:
                raise ApiError(404, f'Instance {server_id} could not be '
                                    f'found.')
        if name == 'evacuate':
            return self._evacuate(ctx, server_id, args)
        if name == 'os-start':
            actions.start(self.compute, server_id)
            return 202, None, {}
        if name == 'os-stop':
            actions.stop(self.compute, server_id)
            return 202, None, {}
        raise ApiError(400, f'There is no such action: {name}')

    def _evacuate(self, ctx: Context, server_id: str, args: t.Any) -> Result:
        self._policy_ctx(ctx, 'os_compute_api:os-evacuate')
        if not isinstance(args, dict):
            args = {}
        allowed = {'host', 'adminPass'}
        if ctx.version < (2, 14):
            allowed.add('onSharedStorage')
            if 'onSharedStorage' not in args:
                raise ApiError(400, f"Invalid input for field/attribute "
                                    f"evacuate. Value: {args}. "
                                    f"'onSharedStorage' is a required "
                                    f"property")
        if (2, 29) <= ctx.version < (2, 68):
            allowed.add('force')
        extra = set(args) - allowed
        if extra:
            names = ', '.join(f"'{e}'" for e in sorted(extra))
            raise ApiError(400, f"Invalid input for field/attribute "
                                f"evacuate. Value: {args}. Additional "
                                f"properties are not allowed ({names} were "
                                f"unexpected)")
        host = args.get('host')
        force = False
        if 'force' in args:
            force = strict_bool(args['force'], 'force')
            if force and not host:
                raise ApiError(400, "Can't force to a non-provided "
                                    "destination")
        actions.evacuate(self.compute, server_id, host, ctx.version,
                         force=force)
        if ctx.version < (2, 14):
            return 200, {'adminPass': 'SimPass' + server_id[:8]}, {}
        return 200, None, {}

    @staticmethod
    def _policy_ctx(ctx: Context, rule: str) -> None:
        if not ctx.admin:
            raise ApiError(403, f"Policy doesn't allow {rule} to be "
                                f"performed.")

    def show_flavor(self, req: Request, flavor_id: str) -> Result:
        if flavor_id != views.FLAVOR['id']:
            raise ApiError(404, f'Flavor {flavor_id} could not be found.')
        flavor = dict(views.FLAVOR, links=[], **{
            'OS-FLV-EXT-DATA:ephemeral': 0, 'OS-FLV-DISABLED:disabled': False,
            'rxtx_factor': 1.0, 'os-flavor-access:is_public': True})
        return 200, {'flavor': flavor}, {}

    # -- migrations ----------------------------------------------------------
    def list_migrations(self, req: Request) -> Result:
        ctx = self._policy(req, 'os_compute_api:os-migrations:index')
        q = req.query
        with self.compute.lock:
            migs = list(reversed(self.compute.migrations))
        out = []
        for m in migs:
            if q.get('instance_uuid') not in (None, m.instance_uuid):
                continue
            if q.get('migration_type') not in (None, m.migration_type):
                continue
            if q.get('source_compute') not in (None, m.source_compute):
                continue
            if q.get('status') not in (None, m.status):
                continue
            if q.get('host') not in (None, m.source_compute,
                                     m.dest_compute):
                continue
            out.append(views.migration(self._base(req), m, ctx.version))
        if ctx.version >= (2, 59):
            limit = _limit(q.get('limit'))
            marker = q.get('marker')
            if marker is not None:
                pos = next((i for i, m in enumerate(out)
                            if m['uuid'] == marker), None)
                if pos is None:
                    raise ApiError(400, f'Marker {marker} could not be '
                                        f'found.')
                out = out[pos + 1:]
            out = out[:limit]
        return 200, {'migrations': out}, {}


def _limit(value: str | None) -> int:
    if value is None:
        return MAX_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise ApiError(400, 'limit param must be an integer')
    if limit < 0:
        raise ApiError(400, 'limit param must be positive')
    return min(limit, MAX_LIMIT)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
