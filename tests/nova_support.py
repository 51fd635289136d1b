"""Helpers for the nova driver tests: config from a cloud handle, a
request recorder, bounded waits, and a loopback endpoint that fails."""
from __future__ import annotations

import contextlib
import http.server
import json
import os
import threading
import time
import typing as t

import yaml
from oslo_config import cfg

from freezer_dr import conf as fdr_conf
from freezer_dr.demo.cluster import wait_for


def fresh_config():
    """A ConfigOpts whose overrides stay its own.

    ``freezer_dr.conf.new_config`` registers the shared module-level
    OptGroup objects; oslo.config only shallow-copies them, so overrides
    set on one ConfigOpts show up in every other one in the process.
    """
    conf = cfg.ConfigOpts()
    for group, opts in fdr_conf.GROUPS:
        conf.register_group(cfg.OptGroup(group.name, title=group.title,
                                         help=group.help))
        conf.register_opts(opts, group=group.name)
    conf([], project='freezer-dr-test', default_config_files=[])
    return conf


def config_for(handle: t.Any, clouds_yaml: str | None = None,
               **groups: dict[str, t.Any]):
    """A private ConfigOpts pointing [cloud] at the handle's clouds.yaml.

    ``groups`` maps a group name to option overrides, e.g.
    ``monitor_nova={'rule': 'all'}``.
    """
    conf = fresh_config()
    conf.set_override('clouds_yaml', clouds_yaml or handle.clouds_yaml,
                      'cloud')
    conf.set_override('cloud', handle.cloud, 'cloud')
    conf.set_override('api_timeout', 10.0, 'cloud')
    for group, overrides in groups.items():
        for name, value in overrides.items():
            conf.set_override(name, value, group)
    return conf


def wait_until(predicate: t.Callable[[], t.Any], timeout: float,
               what: str, interval: float = 0.2) -> t.Any:
    """:func:`freezer_dr.demo.cluster.wait_for`, failing as an assertion
    (the timeout is a bound against hanging, not a performance check)."""
    try:
        return wait_for(predicate, timeout, what, interval)
    except TimeoutError as error:
        raise AssertionError(str(error)) from None


class RequestLog:
    """Every HTTP request a connection sends, in order (a requests hook
    on the connection's real session: nothing is replaced)."""

    def __init__(self, connection: t.Any) -> None:
        self.entries: list[dict[str, t.Any]] = []
        connection.session.session.hooks['response'].append(self._record)

    def _record(self, response: t.Any, *args: t.Any, **kwargs: t.Any):
        request = response.request
        body = request.body
        if isinstance(body, bytes):
            body = body.decode()
        self.entries.append({
            'method': request.method, 'url': request.url,
            'headers': dict(request.headers),
            'body': json.loads(body) if body else None,
            'status': response.status_code})

    def writes(self, fragment: str = '') -> list[dict[str, t.Any]]:
        return [e for e in self.entries
                if e['method'] in ('PUT', 'POST') and fragment in e['url']]


def clouds_yaml_with_bad_secret(handle: t.Any, directory: str,
                                bad: str) -> str:
    """A copy of the handle's clouds.yaml whose password (or token, for
    token auth) is ``bad``."""
    with open(handle.clouds_yaml) as src:
        data = yaml.safe_load(src)
    auth = data['clouds'][handle.cloud]['auth']
    auth['password' if 'password' in auth else 'token'] = bad
    path = os.path.join(directory, 'clouds.yaml')
    with open(path, 'w') as out:
        yaml.safe_dump(data, out)
    return path


class LoopbackNova:
    """A loopback HTTP endpoint with Nova's version document; every other
    request is answered by ``answer(path_with_query) -> (status, body)``,
    after ``delay`` seconds. Stands in for Nova where the simulator cannot
    (server errors, hangs, pagination)."""

    def __init__(self, answer: t.Callable[[str], tuple[int, dict]],
                 delay: float = 0.0) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: t.Any) -> None:
                pass

            def _send(self, code: int, body: t.Any) -> None:
                # bytes go out as they are (answers that are not JSON)
                data = (body if isinstance(body, bytes)
                        else json.dumps(body).encode())
                self.send_response(code)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _answer(self) -> None:
                length = int(self.headers.get('Content-Length') or 0)
                if length:
                    self.rfile.read(length)
                outer.paths.append(self.path)
                if self.path.rstrip('/') in ('', '/v2.1'):
                    self._send(200, {'version': outer.version_doc()})
                    return
                if outer.delay:
                    time.sleep(outer.delay)
                self._send(*outer.answer(self.path))

            do_GET = do_POST = do_PUT = _answer

        self.answer = answer
        self.delay = delay
        self.paths: list[str] = []
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                                      Handler)
        self.server.daemon_threads = True
        self.url = f'http://127.0.0.1:{self.server.server_port}/v2.1'
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        daemon=True)
        self._thread.start()

    def version_doc(self) -> dict[str, t.Any]:
        return {'id': 'v2.1', 'status': 'CURRENT', 'version': '2.100',
                'min_version': '2.1', 'updated': '2013-07-23T11:33:21Z',
                'links': [{'rel': 'self', 'href': self.url + '/'}]}

    def clouds_yaml(self, directory: str, name: str = 'failing') -> str:
        path = os.path.join(directory, 'clouds.yaml')
        with open(path, 'w') as out:
            yaml.safe_dump({'clouds': {name: {
                'auth_type': 'admin_token',
                'auth': {'endpoint': self.url, 'token': 'unused'}}}}, out)
        return path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextlib.contextmanager
def loopback_nova(answer: t.Callable[[str], tuple[int, dict]],
                  delay: float = 0.0):
    nova = LoopbackNova(answer, delay)
    try:
        yield nova
    finally:
        nova.close()


def failing_nova(status: int = 500, delay: float = 0.0):
    """A loopback Nova whose API calls all fail with ``status`` and Nova's
    error body (or answer only after ``delay`` seconds)."""
    return loopback_nova(lambda path: (status, {'computeFault': {
        'code': status, 'message': 'simulated server failure'}}), delay)


