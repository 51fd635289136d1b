"""The real-Nova box's control API: a small JSON WSGI app on loopback.

Mirrors the simulator's ``/sim/...`` control endpoints so the BMC process
and the test handles drive both clouds alike:

- ``GET  /sim/hosts`` -> ``{"hosts": [{"host", "power", "service_running",
  "failure"}]}``
- ``GET  /sim/hosts/{host}/power`` -> ``{"power": "on"|"off"}``
- ``POST /sim/hosts/{host}/power`` ``{"power": "off"|"on"}`` (the BMCs'
  callback: off stops the host's nova-compute, on starts a new one)
- ``POST /sim/hosts/{host}/fail`` ``{"mode": "power"|"crash"|"partition"}``
- ``POST /sim/hosts/{host}/recover``
- ``POST /sim/servers`` ``{"name", "host", "project", "status",
  "metadata"}`` -> ``{"id": ...}`` once the server is in ``status``

Errors answer ``{"error": message}`` with 400 (bad input), 404 (unknown
host or path) or the box's own code.
"""

import json
import logging
import re
from collections.abc import Callable
from collections.abc import Iterable

from tests.realnova.box import BoxError
from tests.realnova.box import NovaBox

LOG = logging.getLogger(__name__)

_HOST = re.compile(
    r'^/sim/hosts/(?P<host>[^/]+)/(?P<what>power|fail|recover)$')
_STATUS = {200: '200 OK', 400: '400 Bad Request', 404: '404 Not Found',
           405: '405 Method Not Allowed', 500: '500 Internal Server Error',
           504: '504 Gateway Timeout'}


class ControlApp:
    """WSGI app translating control requests into :class:`NovaBox` calls."""

    def __init__(self, box: NovaBox):
        self.box = box

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
        if path == '/sim/hosts' and method == 'GET':
            return 200, {'hosts': [
                {'host': h.name, 'power': h.power,
                 'service_running': h.service_running, 'failure': h.failure}
                for h in box.hosts.values()]}
        if path == '/sim/servers' and method == 'POST':
            missing = {'name', 'host'} - set(body)
            if missing:
                raise ValueError(f'missing {sorted(missing)}')
            server_id = box.boot(
                name=body['name'], host=body['host'],
                project=body.get('project'),
                status=body.get('status', 'ACTIVE'),
                metadata=body.get('metadata'))
            return 200, {'id': server_id}
        match = _HOST.match(path)
        if not match:
            return 404, {'error': f'no such control path {path}'}
        host, what = match['host'], match['what']
        state = box.hosts[host]
        if what == 'power' and method == 'GET':
            return 200, {'power': state.power}
        if method != 'POST':
            return 405, {'error': f'{method} not allowed on {path}'}
        if what == 'power':
            box.set_power(host, body.get('power'))
        elif what == 'fail':
            box.fail(host, body.get('mode'))
        else:
            box.recover(host)
        return 200, {'host': host, 'power': state.power,
                     'service_running': state.service_running,
                     'failure': state.failure}
