"""Start the whole simulated cloud and describe it in a state directory.

:class:`SimCloud` builds the state, serves Keystone, Nova and the control
API on loopback, starts the SMTP sink and the BMC process (H3's
``freezer_dr.simulator.bmc``, one child process for every BMC), then
writes into the state directory:

- ``clouds.yaml``       cloud ``sim``, admin password auth (mode 0600)
- ``nodes.yaml``        fencing inventory, one level per host matching its
  BMC (``ipmi``, or ``redfish`` with ``ca_file``; ``--bmc mixed``
  alternates), passwords in ``bmc/<host>`` files (mode 0600)
- ``freezer-dr.conf``   a ready config for freezer-dr ([coordination] left
  to the user)
- ``endpoints.json``    URLs, ports, paths and the pid; written last, so
  its presence means "ready"
"""
from __future__ import annotations

import dataclasses
import json
import os
import secrets
import subprocess
import sys
import time
import typing as t

import yaml
from oslo_log import log as logging

from freezer_dr.simulator import child
from freezer_dr.simulator.control import ControlApp
from freezer_dr.simulator.identity import Identity
from freezer_dr.simulator.keystone import Catalog
from freezer_dr.simulator.keystone import KeystoneApp
from freezer_dr.simulator.nova import NovaApp
from freezer_dr.simulator.seed import Shape
from freezer_dr.simulator.seed import populate
from freezer_dr.simulator.smtp import SmtpSink
from freezer_dr.simulator.state import Compute
from freezer_dr.simulator.state import Settings
from freezer_dr.simulator.wsgi import HttpServer

LOG = logging.getLogger(__name__)

BMC_USER = 'admin'
BMC_READY_TIMEOUT = 120.0
#: ``--bmc``: every host's BMC speaks IPMI, Redfish, or they alternate
BMC_CHOICES = ('ipmi', 'redfish', 'mixed')


def bmc_kind(choice: str, index: int) -> str:
    """The BMC kind of the ``index``-th host under ``--bmc choice``."""
    if choice == 'mixed':
        return ('ipmi', 'redfish')[index % 2]
    if choice not in BMC_CHOICES:
        raise ValueError(f'unknown BMC kind {choice!r}; one of '
                         f'{", ".join(BMC_CHOICES)}')
    return choice


@dataclasses.dataclass
class RunOptions:
    """Everything ``freezer-dr-sim run`` accepts."""
    state_dir: str
    shape: Shape = dataclasses.field(default_factory=Shape)
    settings: Settings = dataclasses.field(default_factory=Settings)
    seed: int | None = None
    smtp_port: int = 0
    smtp_security: str = 'none'
    smtp_auth: bool = False          # require AUTH (user freezer-dr)
    bmcs: bool = True
    bmc_kind: str = 'ipmi'           # ipmi, redfish or mixed
    bind_host: str = '127.0.0.1'     # where every endpoint listens


def _write_private(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
        f.write(text)


def _write_atomic(path: str, text: str) -> None:
    tmp = f'{path}.tmp.{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(text)
    os.replace(tmp, path)


class SimCloud:
    """The running simulated cloud (in this process, plus the BMC child)."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.state_dir = os.path.abspath(options.state_dir)
        self.compute = Compute(options.settings, options.seed)
        self.identity = Identity()
        self.catalog = Catalog(options.settings.region)
        self.servers: list[HttpServer] = []
        self.smtp: SmtpSink | None = None
        self.smtp_credentials: tuple[str, str] | None = None
        self.bmc_proc: subprocess.Popen[bytes] | None = None
        self.bmc_ports: dict[str, int] = {}
        self.bmc_kinds: dict[str, str] = {}
        self.bmc_ca_file: str | None = None
        self.bmc_control_port: int | None = None
        self.admin_password = secrets.token_urlsafe(18)
        self.endpoints: dict[str, t.Any] = {}

    def path(self, *parts: str) -> str:
        return os.path.join(self.state_dir, *parts)

    # -- start / stop --------------------------------------------------------
    def start(self) -> SimCloud:
        os.makedirs(self.state_dir, exist_ok=True)
        try:
            os.unlink(self.path('endpoints.json'))
        except FileNotFoundError:
            pass
        t0 = time.monotonic()
        populate(self.compute, self.identity, self.options.shape,
                 self.admin_password)
        self.compute.events.start()
        host = self.options.bind_host
        keystone = HttpServer(KeystoneApp(self.identity, self.catalog,
                                          self.compute.faults),
                              host=host).start()
        nova_app = NovaApp(self.compute, self.identity)
        nova_app.auth_uri = keystone.url
        nova = HttpServer(nova_app, host=host).start()
        self.control = ControlApp(self.compute, self.identity)
        control = HttpServer(self.control, host=host).start()
        self.servers = [keystone, nova, control]
        self.catalog.add('identity', 'keystone', keystone.url + '/v3')
        self.catalog.add('compute', 'nova', nova.url + '/v2.1')
        if self.options.smtp_auth:
            self.smtp_credentials = ('freezer-dr', secrets.token_urlsafe(12))
            _write_private(self.path('smtp-password'),
                           self.smtp_credentials[1])
        self.smtp = SmtpSink(self.path('maildir'),
                             security=self.options.smtp_security,
                             credentials=self.smtp_credentials,
                             host=host, port=self.options.smtp_port,
                             cert_dir=self.state_dir).start()
        self.control.smtp = self.smtp
        if self.options.bmcs:
            self._start_bmcs(control.url)
        self._write_files(keystone.url, nova.url, control.url)
        LOG.info('simulated cloud ready in %.1f s: %d hosts, %d servers',
                 time.monotonic() - t0, len(self.compute.hosts),
                 len(self.compute.servers))
        return self

    def _start_bmcs(self, control_url: str) -> None:
        os.makedirs(self.path('bmc'), mode=0o700, exist_ok=True)
        entries = []
        for index, host in enumerate(self.compute.hosts):
            password = secrets.token_urlsafe(12)
            _write_private(self.path('bmc', host), password)
            entries.append({'host': host,
                            'address': self.options.bind_host,
                            'port': 0, 'username': BMC_USER,
                            'password': password,
                            'kind': bmc_kind(self.options.bmc_kind, index)})
        ready = self.path('bmc.ready')
        spec = {'power_url': control_url + '/sim/hosts/{host}/power',
                'log': self.path('bmc-log.jsonl'), 'control_port': 0,
                'ready_file': ready, 'tls_dir': self.path('bmc-tls'),
                'bmcs': entries}
        _write_private(self.path('bmc-spec.json'), json.dumps(spec))
        for stale in (ready, spec['log']):
            if os.path.exists(stale):
                os.unlink(stale)
        open(spec['log'], 'a').close()
        self.bmc_proc, info = child.spawn_and_wait(
            [sys.executable, '-m', 'freezer_dr.simulator.bmc',
             '--spec', self.path('bmc-spec.json')], ready,
            self.path('bmc.log'), BMC_READY_TIMEOUT, 'the BMC process')
        self.bmc_ports = {h: int(p) for h, p in info['bmcs'].items()}
        self.bmc_kinds = dict(info.get('kinds') or {})
        self.bmc_ca_file = info.get('ca_file')
        self.bmc_control_port = int(info['control_port'])
        self.control.bmc_control_url = (
            f'http://127.0.0.1:{self.bmc_control_port}')

    def stop(self) -> None:
        """Stop every server and the BMC child (by its pid)."""
        child.stop_process(self.bmc_proc)
        for server in self.servers:
            server.stop()
        if self.smtp is not None:
            self.smtp.stop()
        self.compute.events.stop()

    # -- state directory -----------------------------------------------------
    def _write_files(self, keystone: str, nova: str, control: str) -> None:
        clouds = {'clouds': {'sim': {
            'auth_type': 'password',
            'auth': {'auth_url': keystone + '/v3', 'username': 'admin',
                     'password': self.admin_password,
                     'project_name': 'admin',
                     'user_domain_name': 'Default',
                     'project_domain_name': 'Default'},
            'region_name': self.options.settings.region,
            'identity_api_version': 3, 'interface': 'public'}}}
        _write_private(self.path('clouds.yaml'), yaml.safe_dump(clouds))
        nodes = {host: {'fencing': [self._fencing_level(host)]}
                 for host in self.compute.hosts if host in self.bmc_ports}
        _write_private(self.path('nodes.yaml'),
                       yaml.safe_dump({'nodes': nodes}))
        _write_private(self.path('freezer-dr.conf'), self._config_text())
        assert self.smtp is not None
        settings = self.options.settings
        self.endpoints = {
            'keystone': keystone + '/v3', 'nova': nova + '/v2.1',
            'control': control, 'smtp_host': self.smtp.host,
            'smtp_port': self.smtp.port, 'smtp_security': self.smtp.security,
            'smtp_ca_file': self.smtp.ca_file,
            'smtp_username': (self.smtp_credentials[0]
                              if self.smtp_credentials else None),
            'smtp_password_file': (self.path('smtp-password')
                                   if self.smtp_credentials else None),
            'maildir': self.path('maildir'),
            'bmc_log': self.path('bmc-log.jsonl'),
            'bmc_kinds': self.bmc_kinds, 'bmc_ports': self.bmc_ports,
            'bmc_ca_file': self.bmc_ca_file,
            'bmc_control': (f'http://127.0.0.1:{self.bmc_control_port}'
                            if self.bmc_control_port else None),
            'bmc_pid': self.bmc_proc.pid if self.bmc_proc else None,
            'clouds_yaml': self.path('clouds.yaml'), 'cloud': 'sim',
            'nodes_yaml': self.path('nodes.yaml'),
            'config_file': self.path('freezer-dr.conf'),
            'hosts': list(self.compute.hosts),
            'service_down_time': settings.service_down_time,
            'report_interval': settings.report_interval,
            'pid': os.getpid(),
        }
        _write_atomic(self.path('endpoints.json'),
                      json.dumps(self.endpoints, indent=2))

    def _fencing_level(self, host: str) -> dict[str, t.Any]:
        """The nodes.yaml level of ``host``'s BMC (IPMI or Redfish)."""
        port = self.bmc_ports[host]
        level = {'username': BMC_USER,
                 'password_file': self.path('bmc', host)}
        if self.bmc_kinds.get(host) == 'redfish':
            return {'driver': 'redfish',
                    'address': f'https://{self.options.bind_host}:{port}',
                    'ca_file': self.bmc_ca_file, **level}
        return {'driver': 'ipmi', 'address': self.options.bind_host,
                'port': port,
                **level}

    def _config_text(self) -> str:
        assert self.smtp is not None
        settings = self.options.settings
        email = []
        if self.smtp.ca_file:
            email.append(f'ca_file = {self.smtp.ca_file}')
        if self.smtp_credentials:
            email += [f'username = {self.smtp_credentials[0]}',
                      f'password = {self.smtp_credentials[1]}']
        return '\n'.join([
            '# Written by freezer-dr-sim run: freezer-dr against the '
            'simulated cloud.',
            '# [coordination] (etcd) is left to you.',
            '[cloud]', 'cloud = sim',
            f'clouds_yaml = {self.path("clouds.yaml")}',
            'compute_microversion = 2.94', '',
            '[monitor]',
            f'confirm_window = {settings.service_down_time:g}', '',
            '[monitor_nova]',
            f'report_interval = {settings.report_interval:g}', '',
            '[fencing]', f'inventory = {self.path("nodes.yaml")}', '',
            '[notifiers]', 'drivers = email,log', '',
            '[email]', f'smtp_host = {self.smtp.host}',
            f'smtp_port = {self.smtp.port}',
            f'security = {self.smtp.security}',
            'from_address = freezer-dr@example.org',
            'admin_addresses = cloud-admin@example.org', *email, '',
        ])
