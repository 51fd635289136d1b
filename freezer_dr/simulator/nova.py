"""The simulated Nova compute API v2.1 (the calls freezer-dr makes).

Routes: versions, ``os-services`` (list, 2.53 update by id and the older
``force-down`` / ``disable`` / ``disable-log-reason`` / ``enable``
actions), ``os-hypervisors``, ``servers`` (list, detail, show, actions
evacuate / os-start / os-stop) and ``os-migrations``. Errors use Nova's
fault bodies (``badRequest``, ``itemNotFound``, ``conflictingRequest``,
``computeFault``...). Tokens are checked against the simulated Keystone.
"""
from __future__ import annotations

import time
import typing as t

from freezer_dr.simulator import actions
from freezer_dr.simulator import microversion as mv
from freezer_dr.simulator import nova_cells as cells
from freezer_dr.simulator import nova_views as views
from freezer_dr.simulator import records as rec
from freezer_dr.simulator.identity import UNAUTHORIZED
from freezer_dr.simulator.identity import Identity
from freezer_dr.simulator.nova_context import Context
from freezer_dr.simulator.nova_context import next_link
from freezer_dr.simulator.nova_context import page_limit
from freezer_dr.simulator.nova_context import require_admin
from freezer_dr.simulator.nova_context import strict_bool
from freezer_dr.simulator.nova_context import timestamp
from freezer_dr.simulator.nova_services import ServicesApi
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


class NovaApp(JsonApp):
    """Nova v2.1 over WSGI."""

    api_name = 'nova'
    content_type = 'application/json; charset=UTF-8'
    request_id_headers = ('X-OpenStack-Request-ID', 'X-Compute-Request-ID')

    def __init__(self, compute: Compute, identity: Identity) -> None:
        super().__init__(compute.faults)
        self.compute = compute
        self.identity = identity
        self.auth_uri = ''        # Keystone's URL, set once it listens
        svc = ServicesApi(compute)
        r = self.route
        r('GET', '/', self.versions)
        r('GET', '/v2.1', self.version)
        p = '/v2.1'
        r('GET', p + '/os-services', svc.list_services)
        r('PUT', p + '/os-services/{service_id}', svc.update_service)
        r('GET', p + '/os-hypervisors', svc.list_hypervisors)
        r('GET', p + '/os-hypervisors/detail', svc.list_hypervisors)
        r('GET', p + '/os-hypervisors/{pattern}/servers',
          svc.hypervisor_servers)
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
        """Token first (auth_token middleware), then the microversion."""
        if handler in (self.versions, self.version):
            return None
        token = self.identity.validate(req.header('X-Auth-Token'))
        if token is None:
            return 401, {'error': {'code': 401, 'title': 'Unauthorized',
                                   'message': UNAUTHORIZED}}, {
                'WWW-Authenticate': f"Keystone uri='{self.auth_uri}'"}
        roles = self.identity.roles_of(token.user_id, token.project_id)
        admin = any(r.name == 'admin' for r in roles)
        try:
            version = mv.requested(
                req.header('OpenStack-API-Version'),
                req.header('X-OpenStack-Nova-API-Version'))
        except mv.VersionNotAcceptable as exc:
            # Nova's 406 still echoes the requested version
            req.context = Context(token.user_id, token.project_id, admin,
                                  exc.version)
            raise
        req.context = Context(token.user_id, token.project_id, admin,
                              version)
        return None

    def after(self, req: Request, result: Result) -> Result:
        ctx = req.context
        if isinstance(ctx, Context) and req.path.startswith('/v2.1/'):
            status, body, headers = result
            return status, body, {**headers,
                                  **mv.response_headers(ctx.version)}
        return result

    @staticmethod
    def _policy(req: Request, rule: str) -> Context:
        return require_admin(req.context, rule)

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
        since = timestamp(q, 'changes-since')
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
            if since is not None and s.updated_at < since:
                continue
            out.append(s)
        return out

    def list_servers(self, req: Request) -> Result:
        ctx: Context = req.context
        detail = req.path.rstrip('/').endswith('/detail')
        limit = page_limit(req.query.get('limit'))
        marker = req.query.get('marker')
        now = time.time()
        base = self._base(req)
        with self.compute.lock:
            servers = self._visible(req, ctx)
            # a down cell's servers: first and partial, or left out
            down = sorted((s for s in servers
                           if self.compute.in_down_cell(s.host)),
                          key=lambda s: s.created_at)
            servers = [s for s in servers
                       if not self.compute.in_down_cell(s.host)]
            if not cells.lists_down_servers(ctx.version, req.query):
                down = []
            servers = down + servers
            if marker is not None:
                pos = next((i for i, s in enumerate(servers)
                            if s.id == marker), None)
                if pos is None:
                    raise ApiError(400, f'marker [{marker}] not found')
                servers = servers[pos + 1:]
            page = servers[:limit]
            down_ids = {s.id for s in down}
            out = [cells.server_in_list(base, s, detail)
                   if s.id in down_ids
                   else views.server(base, self.compute, s, ctx.version,
                                     ctx.admin, now) if detail
                   else views.server_brief(base, s) for s in page]
        body: dict[str, t.Any] = {'servers': out}
        if len(page) == limit and page:
            body['servers_links'] = [next_link(req, limit, page[-1].id)]
        return 200, body, {}

    def show_server(self, req: Request, server_id: str) -> Result:
        ctx: Context = req.context
        with self.compute.lock:
            server = self._visible_server(ctx, server_id)
            if self.compute.in_down_cell(server.host):
                return 200, {'server': cells.server_show(
                    self._base(req), server, ctx.version, ctx.admin)}, {}
            body = views.server(self._base(req), self.compute, server,
                                ctx.version, ctx.admin, time.time())
        if ctx.version >= (2, 71):
            body['server_groups'] = []        # show only, not in lists
        return 200, {'server': body}, {}

    def _visible_server(self, ctx: Context, server_id: str) -> t.Any:
        """The server, as Nova shows it to ``ctx``: another project's
        server is not found (404), as one that does not exist."""
        server = self.compute.server(server_id)
        if not ctx.admin and server.project_id != ctx.project_id:
            raise ApiError(404, f'Instance {server_id} could not be found.')
        return server

    def server_action(self, req: Request, server_id: str) -> Result:
        ctx: Context = req.context
        body = req.json()
        if not isinstance(body, dict) or len(body) != 1:
            raise ApiError(400, 'Malformed request body')
        (name, args), = body.items()
        with self.compute.lock:
            server = self._visible_server(ctx, server_id)
            if self.compute.in_down_cell(server.host):
                raise cells.unreachable(self.compute, cells.NOVA_ERROR)
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
        require_admin(ctx, 'os_compute_api:os-evacuate')
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
            verb = 'was' if len(extra) == 1 else 'were'
            raise ApiError(400, f"Invalid input for field/attribute "
                                f"evacuate. Value: {args}. Additional "
                                f"properties are not allowed ({names} "
                                f"{verb} unexpected)")
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
        since = (timestamp(q, 'changes-since') if ctx.version >= (2, 59)
                 else None)
        cells.check_migrations(self.compute, ctx.version)
        with self.compute.lock:
            migs = [m for m in reversed(self.compute.migrations)
                    if not self.compute.in_down_cell(m.source_compute)]
        out = []
        for m in migs:
            # Nova compares updated_at, NULL on a fresh (accepted) record
            if since is not None and (m.updated_at is None
                                      or m.updated_at < since):
                continue
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
            limit = page_limit(q.get('limit'))
            marker = q.get('marker')
            if marker is not None:
                pos = next((i for i, m in enumerate(out)
                            if m['uuid'] == marker), None)
                if pos is None:
                    raise ApiError(400, f'Marker {marker} could not be '
                                        f'found.')
                out = out[pos + 1:]
            out = out[:limit]
            if out and len(out) == limit:
                return 200, {'migrations': out, 'migrations_links': [
                    next_link(req, limit, out[-1]['uuid'])]}, {}
        return 200, {'migrations': out}, {}
