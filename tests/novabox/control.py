"""The real-Nova box's control API: a small JSON WSGI app on loopback.

Same paths and shapes as the simulator's control API
(``freezer_dr/simulator/control.py``), so one handle class drives both:

- ``GET  /sim/status`` -> ``{"hosts": [summary...], "servers": {status:
  count}, "migrations": n}``
- ``GET|POST /sim/hosts/{host}/power`` ``{"power": "on"|"off"}`` (the
  BMCs' callback: off stops the host's nova-compute, on starts a new one)
- ``POST /sim/hosts/{host}/fail`` ``{"mode": "power"|"crash"|"partition"}``
  and ``POST /sim/hosts/{host}/recover`` -> ``{"host": summary}``
- ``POST /sim/servers`` ``{"name", "host", "project", "status",
  "metadata", "tags"}`` -> 201 ``{"server": view}`` once in ``status``
- ``GET  /sim/servers/{id}`` -> ``{"server": view}`` (as Nova sees it)
- ``POST /sim/bmc/{host}`` ``{"mode", "delay"}`` forwarded to the BMC
  process's ``POST /bmcs/{host}/fault``
- ``GET  /sim/cells`` -> ``{"cells": [{"name", "down", "hosts"}...]}``
- ``POST /sim/cells/{cell}`` ``{"down": true|false}`` -> ``{"cell": ...}``:
  Nova's ``DownCellFixture`` on (or off) for that cell

A host summary: ``host, cell, power, failure, heartbeat (nova-compute
running), service_state, forced_down, status, disabled_reason,
instances`` (as Nova lists it: a host in a down cell has no
``service_state`` and status ``UNKNOWN``). Errors
answer ``{"error": message}`` with 400, 404, 409 or the box's own code.
Fault injection (``/sim/faults``) is the simulator's alone.
"""

import collections
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from collections.abc import Iterable

from tests.novabox.api_client import BoxError
from tests.novabox.box import NovaBox

LOG = logging.getLogger(__name__)

_HOST = re.compile(
    r'^/sim/(?:hosts/(?P<host>[^/]+)/(?P<what>power|fail|recover)'
    r'|bmc/(?P<bmc_host>[^/]+))$')
_SERVER = re.compile(r'^/sim/servers/(?P<server_id>[^/]+)$')
_CELL = re.compile(r'^/sim/cells/(?P<cell>[^/]+)$')
_STATUS = {200: '200 OK', 201: '201 Created', 400: '400 Bad Request',
           404: '404 Not Found', 405: '405 Method Not Allowed',
           409: '409 Conflict', 500: '500 Internal Server Error',
           503: '503 Service Unavailable', 504: '504 Gateway Timeout'}


class ControlApp:
    """WSGI app translating control requests into :class:`NovaBox` calls."""

    def __init__(self, box: NovaBox):
        self.box = box
        self.bmc_control_url: str | None = None

    def __call__(self, environ: dict,
                 start_response: Callable) -> Iterable[bytes]:
        method = environ['REQUEST_METHOD']
        path = environ.get('PATH_INFO', '')
        try:
            body = self._body(environ) if method == 'POST' else {}
            code, answer = self._route(method, path, body)
        except BoxError as exc:
            code, answer = exc.code, {'error': str(exc)}
        except KeyError as exc:
            code, answer = 404, {'error': f'unknown host {exc}'}
        except (ValueError, TypeError) as exc:
            code, answer = 400, {'error': str(exc)}
        LOG.info('control %s %s -> %s', method, path, code)
        data = json.dumps(answer).encode()
        start_response(_STATUS.get(code, f'{code} Error'), [
            ('Content-Type', 'application/json'),
            ('Content-Length', str(len(data)))])
        return [data]

    @staticmethod
    def _body(environ: dict) -> dict:
        length = int(environ.get('CONTENT_LENGTH') or 0)
        raw = environ['wsgi.input'].read(length) if length else b''
        body = json.loads(raw) if raw else {}
        if not isinstance(body, dict):
            raise ValueError('request body must be a JSON object')
        return body

    def _route(self, method: str, path: str, body: dict) -> tuple[int, dict]:
        box = self.box
        if path == '/sim/status' and method == 'GET':
            return 200, self.status()
        if path == '/sim/servers' and method == 'POST':
            missing = {'name', 'host'} - set(body)
            if missing:
                raise ValueError(f'missing {sorted(missing)}')
            server_id = box.boot(
                name=body['name'], host=body['host'],
                project=body.get('project'),
                status=body.get('status', 'ACTIVE'),
                metadata=body.get('metadata'), tags=body.get('tags'))
            return 201, {'server': self.server(server_id)}
        if path == '/sim/cells' and method == 'GET':
            return 200, {'cells': [self.cell(c) for c in box.cells]}
        match = _CELL.match(path)
        if match and method == 'POST':
            down = body.get('down')
            if not isinstance(down, bool):
                raise ValueError('"down" must be true or false')
            if match['cell'] not in box.cells:
                return 404, {'error': f'unknown cell {match["cell"]}'}
            box.set_cell_down(match['cell'], down)
            return 200, {'cell': self.cell(match['cell'])}
        match = _SERVER.match(path)
        if match and method == 'GET':
            return 200, {'server': self.server(match['server_id'])}
        match = _HOST.match(path)
        if not match:
            return 404, {'error': f'no such control path {path}'}
        if method != 'POST' and match['what'] != 'power':
            return 405, {'error': f'{method} not allowed on {path}'}
        if match['bmc_host']:
            return self.bmc_fault(match['bmc_host'], body)
        host, what = match['host'], match['what']
        state = box.hosts[host]
        if what == 'power':
            if method == 'POST':
                box.set_power(host, body.get('power'))
            return 200, {'power': state.power}
        if what == 'fail':
            box.fail(host, body.get('mode', 'power'))
        else:
            box.recover(host)
        return 200, {'host': self.status(host)['hosts'][0]}

    def cell(self, name: str) -> dict:
        """One cell: its name, whether Nova can reach it, its hosts."""
        return {'name': name, 'down': name in self.box.down_cells(),
                'hosts': [h.name for h in self.box.hosts.values()
                          if h.cell == name]}

    def server(self, server_id: str) -> dict:
        """One server as Nova's API shows it, in the simulator's shape."""
        s = self.box.admin_api().call('GET', f'/servers/{server_id}')
        s = s['server']
        return {'id': s['id'], 'name': s['name'],
                'host': s['OS-EXT-SRV-ATTR:host'], 'status': s['status'],
                'vm_state': s['OS-EXT-STS:vm_state'],
                'task_state': s['OS-EXT-STS:task_state'],
                'power_state': s['OS-EXT-STS:power_state'],
                'project_id': s['tenant_id'], 'user_id': s['user_id'],
                'metadata': s['metadata'], 'tags': s.get('tags', [])}

    def status(self, only: str | None = None) -> dict:
        """Hosts (box state and Nova's service view), servers, moves."""
        api = self.box.admin_api()
        services = {s['host']: s for s in api.call(
            'GET', '/os-services?binary=nova-compute')['services']}
        servers = api.call('GET', '/servers/detail?all_tenants=1')['servers']
        # a server in a down cell is listed without its host
        per_host = collections.Counter(
            s.get('OS-EXT-SRV-ATTR:host') for s in servers)
        hosts = []
        for state in self.box.hosts.values():
            if only is not None and state.name != only:
                continue
            svc = services.get(state.name, {})
            hosts.append({
                'host': state.name, 'cell': state.cell,
                'power': state.power,
                'failure': state.failure,
                'heartbeat': state.service_running,
                'service_state': svc.get('state'),
                'forced_down': svc.get('forced_down'),
                'status': svc.get('status'),
                'disabled_reason': svc.get('disabled_reason'),
                'instances': per_host[state.name]})
        if only is not None:
            return {'hosts': hosts}
        migrations = api.call('GET', '/os-migrations')['migrations']
        return {'hosts': hosts,
                'servers': dict(collections.Counter(
                    s['status'] for s in servers)),
                'migrations': len(migrations)}

    def bmc_fault(self, host: str, body: dict) -> tuple[int, dict]:
        """Forward a BMC fault (unreachable, slow, stuck...) to the BMCs."""
        if not self.bmc_control_url:
            return 409, {'error': 'No BMC process is running.'}
        self.box.hosts[host]
        request = urllib.request.Request(
            f'{self.bmc_control_url}/bmcs/{host}/fault',
            data=json.dumps(body).encode(), method='POST',
            headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b'null')
        except urllib.error.HTTPError as exc:
            return exc.code, {'error': exc.read().decode(errors='replace')}
        except OSError as exc:
            return 503, {'error': f'BMC process unreachable: {exc}'}
