"""Real Keystone on loopback for the real-Nova box, in its own process.

Keystone's own WSGI application (``keystone.server.wsgi``) on a threaded
wsgiref server, set up the way a deployment sets it up: a config file,
then what ``keystone-manage`` runs for ``db_sync`` (sqlite),
``fernet_setup`` and ``credential_setup`` (keys in the state dir) and
``bootstrap`` (admin user, project, roles, the identity endpoint). Users,
projects and the compute endpoint are added afterwards through the
identity API (``tests.novabox.identity``).

Usage (``serve.py`` runs it; the admin password comes in the environment
as ``OS_BOOTSTRAP_PASSWORD``, never on a command line)::

    python -m tests.novabox.keystone --state-dir D

Writes ``D/keystone.conf``, ``D/keystone.db``, ``D/keys/...``,
``D/keystone.log`` and, once it serves, ``D/ready.json`` with ``url`` (the
``/v3`` endpoint) and ``pid``.

Keystone and Nova both keep their settings in oslo.config's global
``CONF``: they cannot share a process, hence this one.
"""

import argparse
import json
import os
import signal
import socketserver
import sys
import threading
import time
from wsgiref import simple_server

REGION = 'RegionOne'
ADMIN = 'admin'


class _ThreadingWSGIServer(socketserver.ThreadingMixIn,
                           simple_server.WSGIServer):
    daemon_threads = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - base signature
        pass


def config_text(state_dir: str) -> str:
    """keystone.conf for a private, fast test Keystone."""
    def path(*parts: str) -> str:
        return os.path.join(state_dir, *parts)

    return '\n'.join([
        '[DEFAULT]', f'log_file = {path("keystone.log")}',
        'use_stderr = false', '',
        '[database]', f'connection = sqlite:///{path("keystone.db")}', '',
        '[token]', 'provider = fernet', 'expiration = 86400', '',
        '[fernet_tokens]', f'key_repository = {path("keys", "fernet")}', '',
        '[fernet_receipts]',
        f'key_repository = {path("keys", "receipts")}', '',
        '[credential]', f'key_repository = {path("keys", "credential")}',
        '',
        # bcrypt's minimum cost: every password auth is one hash
        '[identity]', 'password_hash_rounds = 4', '',
        '[cache]', 'enabled = false', ''])


def set_up(state_dir: str, url: str, password: str):
    """Config, database, keys and bootstrap; returns the WSGI app.

    What ``keystone-manage db_sync``, ``fernet_setup``,
    ``credential_setup`` and ``bootstrap`` run, called in this process
    (each keystone-manage start costs seconds of imports).
    """
    conf_path = os.path.join(state_dir, 'keystone.conf')
    with open(conf_path, 'w') as f:
        f.write(config_text(state_dir))
    for name in ('fernet', 'receipts', 'credential'):
        os.makedirs(os.path.join(state_dir, 'keys', name), mode=0o700,
                    exist_ok=True)
    sys.argv[1:] = []           # keystone parses the command line too
    from keystone.server.flask import core as flask_core

    def prepare() -> None:
        """Once the config is read, before the app exists: the app
        refuses to start without keys."""
        from keystone.cmd import bootstrap
        from keystone.common import fernet_utils
        from keystone.common import provider_api
        from keystone.common.sql import upgrades
        from keystone.conf import CONF
        from keystone.credential.providers import fernet as credential_fernet

        upgrades.offline_sync_database_to_version()
        uid, gid = os.getuid(), os.getgid()
        for group, keys in (
                ('fernet_tokens', CONF.fernet_tokens.max_active_keys),
                ('fernet_receipts', CONF.fernet_receipts.max_active_keys),
                ('credential', credential_fernet.MAX_ACTIVE_KEYS)):
            futils = fernet_utils.FernetUtils(
                getattr(CONF, group).key_repository, keys, group)
            futils.create_key_directory(uid, gid)
            if futils.validate_key_repository(requires_write=True):
                futils.initialize_key_repository(uid, gid)
        boot = bootstrap.Bootstrapper()
        boot.admin_password = password
        boot.admin_username = ADMIN
        boot.project_name = ADMIN
        boot.admin_role_name = ADMIN
        boot.service_name = 'keystone'
        boot.admin_url = boot.public_url = boot.internal_url = url
        boot.region_id = REGION
        boot.immutable_roles = True
        boot.bootstrap()
        # the app loads its own backends next (as after keystone-manage)
        provider_api.ProviderAPIs._clear_registry_instances()

    return flask_core.initialize_application(
        name='public', post_log_configured_function=prepare,
        config_files=[conf_path])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--state-dir', required=True)
    args = parser.parse_args(argv)
    password = os.environ.pop('OS_BOOTSTRAP_PASSWORD', '')
    if not password:
        parser.error('OS_BOOTSTRAP_PASSWORD must be set')
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    started = time.monotonic()
    server = simple_server.make_server(
        '127.0.0.1', 0, lambda environ, start: [],
        server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    url = f'http://127.0.0.1:{server.server_port}/v3'
    server.set_app(set_up(state_dir, url, password))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    ready = os.path.join(state_dir, 'ready.json')
    with open(ready + '.tmp', 'w') as f:
        json.dump({'url': url, 'pid': os.getpid(),
                   'started_in': round(time.monotonic() - started, 2)}, f)
    os.replace(ready + '.tmp', ready)
    while not stop.wait(1):
        pass
    server.shutdown()
    server.server_close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
