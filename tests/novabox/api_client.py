"""The real-Nova box's own small client of its compute API, and its error.

Plain HTTP through one keystoneauth session (real Keystone tokens), at a
fixed microversion; no Nova imports.
"""

import time

#: 2.74 lets an admin name the host of a new server.
MICROVERSION = '2.74'


class BoxError(Exception):
    """A control request could not be carried out."""

    def __init__(self, message: str, code: int = 400):
        super().__init__(message)
        self.code = code


class ApiClient:
    """Minimal JSON client of the box's own compute API (one keystoneauth
    session: its token, renewed when it expires)."""

    def __init__(self, url: str, session):
        self.base = url + '/v2.1'
        self.session = session
        self.headers = {'OpenStack-API-Version': 'compute ' + MICROVERSION,
                        'Content-Type': 'application/json'}

    def call(self, method: str, path: str, body: dict | None = None):
        resp = self.session.request(self.base + path, method, json=body,
                                    headers=self.headers, timeout=60,
                                    raise_exc=False)
        if resp.status_code >= 400:
            raise BoxError(f'{method} {path}: {resp.status_code} '
                           f'{resp.text}', resp.status_code)
        return resp.json() if resp.content else None

    def wait(self, server_id: str, status: str, host: str,
             deadline: float) -> None:
        while True:
            server = self.call('GET', '/servers/' + server_id)['server']
            if (server['status'] == status
                    and server['OS-EXT-SRV-ATTR:host'] == host
                    and not server['OS-EXT-STS:task_state']):
                return
            if server['status'] == 'ERROR' and status != 'ERROR':
                raise BoxError(f'server {server_id} went to ERROR: '
                               f'{server.get("fault")}', 500)
            if time.monotonic() > deadline:
                raise BoxError(
                    f'server {server_id} not {status} on {host} in time '
                    f'({server["status"]} on '
                    f'{server["OS-EXT-SRV-ATTR:host"]})', 504)
            time.sleep(0.2)
