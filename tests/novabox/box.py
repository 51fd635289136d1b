"""Real Nova 34 in one process: API, conductor, scheduler, fake computes.

Nova's own functional-test fixtures (``nova.test.TestCase``) are driven by
hand to build a long-lived cloud with N compute hosts on
``fake.MediumFakeDriver``, spread over one or more cells. The compute API
is served on a real loopback port behind the real keystonemiddleware
``auth_token`` filter, validating tokens against a real Keystone
(``tests.novabox.keystone``, its own process), so clients talk to it
exactly as to a real Nova.

Import this module only in the box's own process (``tests.novabox.serve``):
importing nova's test tree patches process-wide state.
"""

import os

# Before nova is imported: native threads, no oslotest alarms or captures.
os.environ['OS_NOVA_DISABLE_EVENTLET_PATCHING'] = '1'
for _name in [n for n in os.environ if n.startswith('OS_')
              if n != 'OS_NOVA_DISABLE_EVENTLET_PATCHING']:
    del os.environ[_name]

# Nova refuses to run threaded if eventlet was imported before it decided
# (futurist imports it when available), so let nova decide first.
from nova import monkey_patch  # noqa: E402

monkey_patch.patch()

import logging  # noqa: E402
import socketserver  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from dataclasses import field  # noqa: E402
from wsgiref import simple_server  # noqa: E402

import fasteners  # noqa: E402
import fixtures  # noqa: E402
from keystoneauth1 import loading as ks_loading  # noqa: E402
from nova import conf as nova_conf  # noqa: E402
from nova import test as nova_test  # noqa: E402
from nova.servicegroup import api as servicegroup_api  # noqa: E402
from nova.tests import fixtures as nova_fixtures  # noqa: E402
from nova.tests.functional import fixtures as func_fixtures  # noqa: E402

from tests.novabox.api_client import ApiClient  # noqa: E402
from tests.novabox.api_client import BoxError  # noqa: E402, F401
from tests.novabox.down_cells import DownCells  # noqa: E402
from tests.novabox.down_cells import cell_of  # noqa: E402
from tests.novabox.identity import NOVA_USER  # noqa: E402
from tests.novabox.identity import REGION  # noqa: E402
from tests.novabox.identity import SERVICE_PROJECT  # noqa: E402
from tests.novabox.identity import CloudIdentity  # noqa: E402

LOG = logging.getLogger(__name__)

ADMIN_PROJECT = 'admin'
AUTHTOKEN = 'keystone_authtoken'


class ReaderPreferringLock(fasteners.ReaderWriterLock):
    """A reader/writer lock that never makes readers queue behind writers.

    Nova's ``CellDatabases`` fixture holds its read lock across whole
    database calls and takes the write lock to retarget cells; with the
    default writer-preferring lock a waiting writer blocks new readers
    that the current readers depend on, and a long-running cloud
    deadlocks after a few overlapping builds.
    """

    def _acquire_read_lock(self, me):
        with self._cond:
            while self._writer is not None and self._writer != me:
                self._cond.wait()
            self._readers[me] = self._readers.get(me, 0) + 1


class _CellDatabases(nova_fixtures.CellDatabases):
    """``CellDatabases`` with the reader-preferring lock."""

    def __init__(self):
        super().__init__()
        self._cell_lock = ReaderPreferringLock()


class _NovaCase(nova_test.TestCase):
    """``nova.test.TestCase`` used as a fixture container, not a test."""

    def _setup_cells(self):
        with fixtures.MonkeyPatch('nova.tests.fixtures.CellDatabases',
                                  _CellDatabases):
            super()._setup_cells()

    def _clear_attrs(self):
        """Keep attributes: the cloud is torn down only at exit."""

    def runTest(self):  # noqa: N802 - unittest's name
        """Unused: the case only hosts fixtures."""


class _ThreadingWSGIServer(socketserver.ThreadingMixIn,
                           simple_server.WSGIServer):
    daemon_threads = True


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - base signature
        LOG.debug('api: ' + format, *args)


def serve_wsgi(app, host: str = '127.0.0.1', port: int = 0):
    """Serve ``app`` on a threaded loopback server in a daemon thread."""
    server = simple_server.make_server(
        host, port, app, server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True,
                              name=f'wsgi-{server.server_port}')
    thread.start()
    return server


@dataclass
class HostState:
    """What the box knows about one compute host besides Nova's own view."""

    name: str
    cell: str = 'cell1'
    power: str = 'on'
    service_running: bool = True
    failure: str | None = None
    history: list[str] = field(default_factory=list)


class NovaBox:
    """A running Nova cloud with fake compute hosts, served over HTTP."""

    def __init__(self, hosts: list[str], identity: CloudIdentity,
                 service_down_time: float = 6, report_interval: float = 1,
                 log_path: str | None = None, cells: int = 1):
        for name, value in (('service_down_time', service_down_time),
                            ('report_interval', report_interval)):
            if value != int(value) or value < 1:
                raise ValueError(f'{name} must be a whole number of seconds '
                                 f'(nova takes integers), not {value}')
        if cells < 1:
            raise ValueError(f'cells must be at least 1, not {cells}')
        self.host_names = list(hosts)
        self.cells = [f'cell{i + 1}' for i in range(cells)]
        self.service_down_time = service_down_time
        self.report_interval = report_interval
        self.log_path = log_path
        self.identity = identity
        self.hosts = {h: HostState(h, cell=cell_of(i, cells))
                      for i, h in enumerate(hosts)}
        self._down_cells: set[str] = set()
        self._down_fixture: DownCells | None = None
        self._lock = threading.RLock()
        self._case: _NovaCase | None = None
        self._server = None
        self.url = ''

    # -- lifecycle -------------------------------------------------------
    def start(self) -> None:
        """Set up nova's fixtures, start the services and the HTTP API."""
        case = self._case = _NovaCase()
        case.NUMBER_OF_CELLS = len(self.cells)
        servicegroup_api.INITIAL_REPORTING_DELAY = 0
        case.setUp()
        self._redirect_logging()
        case.flags(compute_driver='fake.MediumFakeDriver')
        case.flags(report_interval=int(self.report_interval),
                   service_down_time=int(self.service_down_time))
        venv_etc = os.path.join(sys.prefix, 'etc', 'nova', 'api-paste.ini')
        case.flags(api_paste_config=venv_etc, group='wsgi')
        # A test cloud: no per-project quota on servers, cores or RAM.
        case.flags(instances=-1, cores=-1, ram=-1, group='quota')
        self._authtoken(case)
        case.useFixture(nova_fixtures.RealPolicyFixture())
        case.useFixture(nova_fixtures.NeutronFixture(case))
        case.useFixture(nova_fixtures.GlanceFixture(case))
        case.useFixture(nova_fixtures.CinderFixture(case))
        case.useFixture(func_fixtures.PlacementFixture())
        api = case.useFixture(nova_fixtures.OSAPIFixture(
            api_version='v2.1', stub_keystone=False))
        case.flags(transport_url=case.cell_mappings['cell1'].transport_url)
        case.start_service('conductor')
        case.start_service('scheduler')
        for host in self.host_names:
            case._start_compute(host, cell_name=self.hosts[host].cell)
        self._server = serve_wsgi(api.app())
        self.url = f'http://127.0.0.1:{self._server.server_port}'

    def stop(self) -> None:
        """Stop the HTTP server and run nova's cleanups in reverse."""
        for cell in sorted(self._down_cells):
            self.set_cell_down(cell, False)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._case is not None:
            self._case.doCleanups()
            self._case = None

    def _redirect_logging(self) -> None:
        """Send what nova's StandardLogging captures to a file (or drop)."""
        stream = (open(self.log_path, 'a', buffering=1)  # noqa: SIM115
                  if self.log_path else open(os.devnull, 'w'))
        self._log_stream = stream
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(stream)

    # -- auth ------------------------------------------------------------
    def _authtoken(self, case: _NovaCase) -> None:
        """keystonemiddleware validates tokens against the real Keystone
        with Nova's service user (password auth, as a deployment)."""
        conf = nova_conf.CONF
        ks_loading.register_auth_conf_options(conf, AUTHTOKEN)
        conf.register_opts(ks_loading.get_auth_plugin_conf_options(
            'password'), group=AUTHTOKEN)
        identity = self.identity
        case.flags(auth_type='password', auth_url=identity.url,
                   username=NOVA_USER, password=identity.nova_password,
                   user_domain_id='default', project_name=SERVICE_PROJECT,
                   project_domain_id='default', region_name=REGION,
                   www_authenticate_uri=identity.url, group=AUTHTOKEN)

    # -- hosts -----------------------------------------------------------
    def stop_compute(self, host: str) -> None:
        """Stop the host's nova-compute service: no more heartbeats."""
        with self._lock:
            state = self.hosts[host]
            if state.service_running:
                self._case.computes[host].stop()
                state.service_running = False

    def start_compute(self, host: str) -> None:
        """Start a new nova-compute for ``host`` keeping its guests."""
        with self._lock:
            state = self.hosts[host]
            if not state.service_running:
                old = self._case.computes[host]
                self._case.computes[host] = (
                    self._case.restart_compute_service(old))
                state.service_running = True

    def set_power(self, host: str, power: str) -> None:
        """Power a host off (its compute dies) or on (compute starts)."""
        if power not in ('on', 'off'):
            raise ValueError(f'power must be on or off, not {power!r}')
        with self._lock:
            state = self.hosts[host]
            if power == state.power:
                return
            state.power = power
            state.history.append(f'power {power} at {time.time():.3f}')
            if power == 'off':
                self.stop_compute(host)
            else:
                state.failure = None
                self.start_compute(host)

    def fail(self, host: str, mode: str) -> None:
        """Fail a host: 'power' loss, nova-compute 'crash', 'partition'."""
        if mode not in ('power', 'crash', 'partition'):
            raise ValueError(f'unknown failure mode {mode!r}')
        with self._lock:
            if mode == 'power':
                self.set_power(host, 'off')
            else:
                self.stop_compute(host)
            self.hosts[host].failure = mode

    def recover(self, host: str) -> None:
        """Bring a failed host back: power on and nova-compute started."""
        with self._lock:
            state = self.hosts[host]
            state.failure = None
            if state.power == 'off':
                self.set_power(host, 'on')
            else:
                self.start_compute(host)

    # -- cells -----------------------------------------------------------
    def set_cell_down(self, cell: str, down: bool) -> None:
        """Make Nova unable (or able again) to reach ``cell``'s database
        and queue, with Nova's own ``DownCellFixture`` (:class:`DownCells`).

        The fixture patches ``nova.context.scatter_gather_cells`` and
        ``target_cell`` process-wide, as an unreachable cell database is
        for every Nova service: the API lists the cell's records as
        unknown, the scheduler skips its hosts, builds to it fail. Its
        computes keep reporting (their own database is fine).
        """
        if cell not in self.cells:
            raise KeyError(cell)
        with self._lock:
            wanted = set(self._down_cells)
            (wanted.add if down else wanted.discard)(cell)
            if wanted == self._down_cells:
                return
            # One fixture covers every down cell: they patch the same
            # functions, so the old one goes before the new one comes.
            if self._down_fixture is not None:
                self._down_fixture.cleanUp()
                self._down_fixture = None
            if wanted:
                fixture = DownCells(
                    [self._case.cell_mappings[c] for c in sorted(wanted)])
                fixture.setUp()
                self._down_fixture = fixture
            self._down_cells = wanted

    def down_cells(self) -> list[str]:
        """The cells Nova cannot reach now."""
        return sorted(self._down_cells)

    # -- servers ---------------------------------------------------------
    def admin_api(self) -> 'ApiClient':
        """A client of the box's compute API as the cloud admin."""
        return ApiClient(self.url, self.identity.admin_session())

    def boot(self, name: str, host: str, project: str | None = None,
             status: str = 'ACTIVE', metadata: dict | None = None,
             tags: list[str] | None = None, timeout: float = 120) -> str:
        """Boot a server on ``host`` through the API; wait for ``status``.

        ``status`` is ACTIVE, SHUTOFF (booted, then stopped) or ERROR
        (booted, then reset to error). Returns the server id.
        """
        if status not in ('ACTIVE', 'SHUTOFF', 'ERROR'):
            raise ValueError(f'cannot boot into status {status!r}')
        if host not in self.hosts:
            raise KeyError(host)
        api = ApiClient(self.url, self.identity.project_session(
            project or ADMIN_PROJECT))
        body = {'server': {
            'name': name, 'imageRef': IMAGE_ID, 'flavorRef': FLAVOR_ID,
            'networks': 'none', 'host': host,
            'metadata': {k: str(v) for k, v in (metadata or {}).items()}}}
        if tags:
            body['server']['tags'] = list(tags)
        server_id = api.call('POST', '/servers', body)['server']['id']
        deadline = time.monotonic() + timeout
        api.wait(server_id, 'ACTIVE', host, deadline)
        if status == 'SHUTOFF':
            api.call('POST', f'/servers/{server_id}/action',
                     {'os-stop': None})
        elif status == 'ERROR':
            api.call('POST', f'/servers/{server_id}/action',
                     {'os-resetState': {'state': 'error'}})
        api.wait(server_id, status, host, deadline)
        return server_id


#: GlanceFixture's first image and the m1.tiny flavor.
IMAGE_ID = nova_fixtures.GlanceFixture.image1['id']
FLAVOR_ID = '1'
