"""Simulated Nova: ``os-services`` and ``os-hypervisors``.

Service updates follow ``nova/api/openstack/compute/services.py``: by
uuid from 2.53 (``status`` / ``disabled_reason`` / ``forced_down``), else
the ``enable`` / ``disable`` / ``disable-log-reason`` / ``force-down``
actions; only nova-compute services can be updated; a host cannot be
forced up while ``done`` evacuations still name it as their source.
"""
from __future__ import annotations

import time
import typing as t

from freezer_dr.simulator import actions
from freezer_dr.simulator import nova_cells as cells
from freezer_dr.simulator import nova_views as views
from freezer_dr.simulator import records as rec
from freezer_dr.simulator.nova_context import Context
from freezer_dr.simulator.nova_context import is_uuid
from freezer_dr.simulator.nova_context import next_link
from freezer_dr.simulator.nova_context import page_limit
from freezer_dr.simulator.nova_context import require_admin
from freezer_dr.simulator.nova_context import strict_bool
from freezer_dr.simulator.state import ApiError
from freezer_dr.simulator.state import Compute
from freezer_dr.simulator.wsgi import Request
from freezer_dr.simulator.wsgi import Result

API_BINARIES = ('nova-osapi_compute', 'nova-metadata')
RPC_TIMEOUT_ERROR = (
    'Unexpected API Error. Please report this at '
    'http://bugs.launchpad.net/nova/ and attach the Nova API log if '
    "possible.\n<class 'oslo_messaging.exceptions.MessagingTimeout'>")


class ServicesApi:
    """Handlers of the services and hypervisors routes."""

    def __init__(self, compute: Compute) -> None:
        self.compute = compute

    @staticmethod
    def _policy(req: Request, rule: str) -> Context:
        return require_admin(req.context, rule)


    # -- services ------------------------------------------------------------
    def list_services(self, req: Request) -> Result:
        ctx = self._policy(req, 'os_compute_api:os-services:list')
        host = req.query.get('host')
        binary = req.query.get('binary')
        now = time.time()
        down, up = [], []
        with self.compute.lock:
            for s in self.compute.services:
                if (s.binary in API_BINARIES or (host and s.host != host)
                        or (binary and s.binary != binary)):
                    continue
                if s.cell not in self.compute.down_cells:
                    up.append(views.service(self.compute, s, ctx.version,
                                            now))
                elif (ctx.version >= cells.SUPPORT
                      and s.binary == rec.COMPUTE_BINARY):
                    down.append(cells.service(s))
        return 200, {'services': down + up}, {}

    def _service_by_host(self, host: str, binary: str) -> rec.Service:
        for svc in self.compute.services:
            if svc.host == host and svc.binary == binary:
                if svc.cell in self.compute.down_cells:
                    raise cells.unreachable(self.compute)
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
        if not is_uuid(service_id):
            raise ApiError(400, f'Invalid uuid {service_id}')
        if svc is None:
            raise ApiError(404, f'Service {service_id} could not be found.')
        if svc.cell in self.compute.down_cells:
            raise cells.unreachable(self.compute)
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
        cells.require_all_cells(self.compute)
        detail = req.path.rstrip('/').endswith('/detail')
        with_servers = False
        pattern = None
        if ctx.version >= (2, 53):
            with_servers = strict_bool(
                req.query.get('with_servers', 'false'), 'with_servers')
            pattern = req.query.get('hypervisor_hostname_pattern')
        now = time.time()
        limit = None
        with self.compute.lock:
            hosts = [h for h in self.compute.hosts.values()
                     if pattern is None or pattern in h.name]
            if pattern is not None and not hosts:
                raise ApiError(404, f"No hypervisor matching '{pattern}' "
                                    f"could be found.")
            if ctx.version >= (2, 33) and pattern is None:
                limit = page_limit(req.query.get('limit'))
                hosts = self._page(hosts, ctx, req.query.get('marker'))
                hosts = hosts[:limit]
            out = [views.hypervisor(
                self.compute, h, ctx.version, now, detail,
                self._servers_on(h.name) if with_servers else None)
                for h in hosts]
            # 2.88+: uptime is an RPC call to every compute Nova still
            # counts as up; a dead one makes the whole list time out.
            stuck = detail and ctx.version >= (2, 88) and any(
                self.compute.service_up(h.service, now)
                and not h.heartbeats(now) for h in hosts)
        if stuck:
            time.sleep(self.compute.settings.rpc_timeout)
            raise ApiError(500, RPC_TIMEOUT_ERROR)
        body: dict[str, t.Any] = {'hypervisors': out}
        if limit is not None and out and len(out) == limit:
            body['hypervisors_links'] = [next_link(req, limit,
                                                   out[-1]['id'])]
        return 200, body, {}

    @staticmethod
    def _page(hosts: list[rec.Host], ctx: Context,
              marker: str | None) -> list[rec.Host]:
        if marker is None:
            return hosts
        for i, h in enumerate(hosts):
            key = (h.hypervisor_uuid if ctx.version >= (2, 53)
                   else str(h.hypervisor_id))
            if key == marker:
                return hosts[i + 1:]
        raise ApiError(400, f'marker [{marker}] not found')

    def _servers_on(self, host: str) -> list[rec.Server]:
        return [self.compute.servers[i]
                for i in sorted(self.compute.by_host[host])]

    def hypervisor_servers(self, req: Request, pattern: str) -> Result:
        ctx = self._policy(req, 'os_compute_api:os-hypervisors:servers')
        cells.require_all_cells(self.compute)
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
