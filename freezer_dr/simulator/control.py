"""The simulator's control API: ground truth, failures, faults, boots.

Not an OpenStack API: tests, the CLI and the BMC process use it.

- ``GET  /sim/status``                       hosts, power, service state
- ``GET|POST /sim/hosts/{host}/power``       ``{"power": "on"|"off"}``
- ``POST /sim/hosts/{host}/fail``            ``{"mode": M}``, M one of
  ``power``, ``crash``, ``partition``
- ``POST /sim/hosts/{host}/recover``
- ``POST /sim/servers``                      boot ``{"name", "host", "project",
  "status", "metadata", "tags"}``
- ``GET  /sim/servers/{id}``                 a server's ground truth
- ``GET|POST /sim/faults``                   latency / error rate per API,
  ``error_status``, ``evacuate_failure_rate``, ``rebuild_time``
- ``GET  /sim/cells``                        ``{"cells": [{"name", "down",
  "hosts"}...]}``
- ``POST /sim/cells/{cell}``                 ``{"down": true|false}``: Nova
  cannot (or can again) reach the cell (``nova_cells``)
- ``POST /sim/bmc/{host}``                   ``{"mode", "delay"}`` forwarded to
  the BMC process's ``POST /bmcs/{host}/fault`` (none, unreachable, slow,
  stuck, wrong-password)
- ``POST /sim/smtp``                         ``{"mode", "delay"}``: the SMTP
  sink's fault (none, slow, reject, refuse)
"""
from __future__ import annotations

import json
import time
import typing as t
import urllib.error
import urllib.request

from freezer_dr.simulator import actions
from freezer_dr.simulator import seed
from freezer_dr.simulator.identity import Identity
from freezer_dr.simulator.state import APIS
from freezer_dr.simulator.state import ApiError
from freezer_dr.simulator.state import Compute
from freezer_dr.simulator.wsgi import JsonApp
from freezer_dr.simulator.wsgi import Request
from freezer_dr.simulator.wsgi import Result


class ControlApp(JsonApp):
    """The ``/sim`` control API."""

    def __init__(self, compute: Compute, identity: Identity) -> None:
        super().__init__(None)
        self.compute = compute
        self.identity = identity
        self.bmc_control_url: str | None = None
        self.smtp: t.Any = None          # the SmtpSink, set by the runner
        r = self.route
        r('GET', '/sim/status', self.status)
        r('GET', '/sim/hosts/{host}/power', self.get_power)
        r('POST', '/sim/hosts/{host}/power', self.set_power)
        r('POST', '/sim/hosts/{host}/fail', self.fail)
        r('POST', '/sim/hosts/{host}/recover', self.recover)
        r('POST', '/sim/servers', self.boot)
        r('GET', '/sim/servers/{server_id}', self.get_server)
        r('GET', '/sim/faults', self.get_faults)
        r('POST', '/sim/faults', self.set_faults)
        r('POST', '/sim/bmc/{host}', self.bmc)
        r('POST', '/sim/smtp', self.smtp_fault)
        r('GET', '/sim/cells', self.get_cells)
        r('POST', '/sim/cells/{cell}', self.set_cell)

    @staticmethod
    def _body(req: Request) -> dict[str, t.Any]:
        body = req.json() if req.raw_body else {}
        if not isinstance(body, dict):
            raise ApiError(400, 'Malformed request body')
        return body

    def status(self, req: Request) -> Result:
        return 200, self.compute.status(), {}

    def get_power(self, req: Request, host: str) -> Result:
        with self.compute.lock:
            return 200, {'power': self.compute.host(host).power}, {}

    def set_power(self, req: Request, host: str) -> Result:
        power = self._body(req).get('power')
        h = self.compute.set_power(host, str(power))
        return 200, {'power': h.power}, {}

    def fail(self, req: Request, host: str) -> Result:
        mode = str(self._body(req).get('mode', 'power'))
        self.compute.fail(host, mode)
        return self._host(host)

    def recover(self, req: Request, host: str) -> Result:
        """Recover; unless ``{"wait": false}``, answer once nova-compute
        has started (evacuated guests cleaned up, heartbeats flowing)."""
        wait = self._body(req).get('wait', True)
        h = self.compute.recover(host)
        deadline = time.time() + self.compute.settings.boot_delay + 10
        while wait and h.booting and time.time() < deadline:
            time.sleep(0.02)
        return self._host(host)

    def _host(self, host: str) -> Result:
        with self.compute.lock:
            return 200, {'host': self.compute.host_summary(
                self.compute.host(host), time.time())}, {}

    def _project(self, ref: str | None) -> str:
        """The project named or identified by ``ref``; an unknown one is
        created (id = name = ref) with one member user, as the real-Nova
        box takes any project id."""
        projects = self.identity.projects
        if ref is None:
            ref = next((p.name for p in projects.values()
                        if p.name != 'admin'), 'admin')
        for p in projects.values():
            if ref in (p.id, p.name):
                return p.id
        return seed.add_project(self.compute, self.identity, ref, ref,
                                users=1).id

    def boot(self, req: Request) -> Result:
        body = self._body(req)
        for field in ('name', 'host'):
            if not isinstance(body.get(field), str):
                raise ApiError(400, f'{field!r} is required.')
        project_id = self._project(body.get('project'))
        users = self.identity.users_of(project_id)
        server = actions.boot(
            self.compute, body['name'], body['host'], project_id,
            users[0].id if users else '', status=body.get('status', 'ACTIVE'),
            metadata=body.get('metadata'), tags=body.get('tags'))
        return 201, {'server': self._server(server.id)}, {}

    def _server(self, server_id: str) -> dict[str, t.Any]:
        with self.compute.lock:
            s = self.compute.server(server_id)
            return {'id': s.id, 'name': s.name, 'host': s.host,
                    'status': s.status, 'vm_state': s.vm_state,
                    'task_state': s.task_state,
                    'power_state': s.power_state,
                    'project_id': s.project_id, 'user_id': s.user_id,
                    'metadata': dict(s.metadata), 'tags': list(s.tags)}

    def get_server(self, req: Request, server_id: str) -> Result:
        return 200, {'server': self._server(server_id)}, {}

    def get_faults(self, req: Request) -> Result:
        return 200, self._faults(), {}

    def _faults(self) -> dict[str, t.Any]:
        out = self.compute.faults.as_dict()
        out['rebuild_time'] = self.compute.settings.rebuild_time
        return out

    def set_faults(self, req: Request) -> Result:
        body = self._body(req)
        faults = self.compute.faults
        with self.compute.lock:
            for key in ('latency', 'error_rate'):
                for api, value in (body.get(key) or {}).items():
                    if api not in APIS:
                        raise ApiError(400, f'Unknown API {api!r}: use one '
                                            f'of {", ".join(APIS)}.')
                    getattr(faults, key)[api] = _number(value, key)
            if 'error_status' in body:
                status = int(_number(body['error_status'], 'error_status'))
                if status not in (500, 503):
                    raise ApiError(400, 'error_status must be 500 or 503.')
                faults.error_status = status
            if 'evacuate_failure_rate' in body:
                faults.evacuate_failure_rate = _number(
                    body['evacuate_failure_rate'], 'evacuate_failure_rate')
            if 'rebuild_time' in body:
                self.compute.settings.rebuild_time = _number(
                    body['rebuild_time'], 'rebuild_time')
        return 200, self._faults(), {}

    def get_cells(self, req: Request) -> Result:
        with self.compute.lock:
            return 200, {'cells': [self.compute.cell_summary(c)
                                   for c in self.compute.cells]}, {}

    def set_cell(self, req: Request, cell: str) -> Result:
        down = self._body(req).get('down')
        if not isinstance(down, bool):
            raise ApiError(400, '"down" must be true or false.')
        self.compute.set_cell_down(cell, down)
        with self.compute.lock:
            return 200, {'cell': self.compute.cell_summary(cell)}, {}

    def bmc(self, req: Request, host: str) -> Result:
        """Forward a BMC fault to the BMC process (slow / dead BMCs)."""
        if not self.bmc_control_url:
            raise ApiError(409, 'No BMC process is running.')
        with self.compute.lock:
            self.compute.host(host)
        data = json.dumps(self._body(req)).encode()
        request = urllib.request.Request(
            f'{self.bmc_control_url}/bmcs/{host}/fault', data=data,
            method='POST',
            headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b'null'), {}
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, exc.read().decode(errors='replace'))
        except OSError as exc:
            raise ApiError(503, f'BMC process unreachable: {exc}')


    def smtp_fault(self, req: Request) -> Result:
        """Slow, rejecting or refusing SMTP sink (``none`` heals)."""
        if self.smtp is None:
            raise ApiError(409, 'No SMTP sink is running.')
        body = self._body(req)
        try:
            fault = self.smtp.set_fault(
                str(body.get('mode', 'none')),
                _number(body.get('delay', 0.0), 'delay'))
        except ValueError as exc:
            raise ApiError(400, str(exc))
        return 200, {'mode': fault.mode, 'delay': fault.delay}, {}


def _number(value: t.Any, field: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ApiError(400, f'{field} must be a number.')
    if number < 0:
        raise ApiError(400, f'{field} must not be negative.')
    return number
