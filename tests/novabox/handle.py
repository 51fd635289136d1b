"""Test-side handle of the real-Nova box: the simulator's CloudHandle, with
``python -m tests.novabox.serve`` as the child process (Keystone, Nova,
Placement, the BMCs).

The box's state dir, ``endpoints.json`` and ``/sim/...`` control API have
the simulator's shapes, so :class:`SimCloudHandle` drives it unchanged;
only the command line and the few things real Nova does not have differ
(no SMTP sink, no fault injection: ``inject`` answers 404). Nova's
fixtures and monkeypatching stay in the child; the caller talks HTTP::

    with RealNovaCloud(state_dir, hosts=4, service_down_time=6) as cloud:
        conn = cloud.connection(compute_api_version='2.94')
        server_id = cloud.boot('vm1', cloud.hosts[0])
        cloud.fail(cloud.hosts[0], 'crash')

Like the simulator's handle it runs ``python -m`` from the current
directory: run it from the repository root (pytest and tox do).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import urllib.error
import urllib.request

from freezer_dr.simulator.handle import START_TIMEOUT
from freezer_dr.simulator.handle import SimCloudHandle
from freezer_dr.simulator.handle import SimError
from freezer_dr.simulator.handle import _kill_if_ours

#: Keystone's setup and Nova's start, on a loaded 2-core machine
BOX_START_TIMEOUT = max(START_TIMEOUT, 300.0)
#: longer than the box's own wait for a booting server (120 s)
CONTROL_TIMEOUT = 200.0


def nova_available() -> bool:
    """Whether nova (the ``realnova`` extra) is importable here."""
    try:
        return importlib.util.find_spec('nova') is not None
    except (ImportError, ValueError):
        return False


class RealNovaCloud(SimCloudHandle):
    """Real Nova with fake compute hosts and IPMI BMCs, as a subprocess."""

    name = 'realnova'
    cloud = 'realnova'

    def __init__(self, state_dir: str, hosts: int = 4,
                 service_down_time: float = 6.0,
                 report_interval: float = 1.0, bmcs: bool = True,
                 cells: int = 1) -> None:
        super().__init__(state_dir, hosts=hosts,
                         service_down_time=service_down_time,
                         report_interval=report_interval, bmcs=bmcs)
        self._args = [
            sys.executable, '-m', 'tests.novabox.serve',
            '--state-dir', self.state_dir, '--hosts', str(hosts),
            '--service-down-time', str(service_down_time),
            '--report-interval', str(report_interval),
            '--cells', str(cells)]
        if not bmcs:
            self._args.append('--no-bmc')
        self.start_seconds: float | None = None

    def start(self, timeout: float = BOX_START_TIMEOUT) -> RealNovaCloud:
        """Start the box; ``start_seconds`` is the wall time until ready."""
        began = time.monotonic()
        super().start(timeout)
        self.start_seconds = round(time.monotonic() - began, 2)
        return self

    def control(self, method: str, path: str,
                body: dict | None = None, timeout: float = CONTROL_TIMEOUT):
        """The control API, waiting as long as a boot may take (the box
        waits up to 120 s for a server; it is CPU-bound)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.endpoints['control'] + path, data=data, method=method,
            headers={'Content-Type': 'application/json'})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b'null')
        except urllib.error.HTTPError as exc:
            raise SimError(f'{method} {path}: {exc.code} '
                           f'{exc.read().decode(errors="replace")}')

    def close(self) -> None:
        """Stop the box; its Keystone too if the box died without it."""
        super().close()
        pid = self.endpoints.get('keystone_pid')
        if pid:
            _kill_if_ours(int(pid), self.state_dir + '/keystone')

    @property
    def keystone_url(self) -> str:
        return self.endpoints['keystone']

    @property
    def cells(self) -> dict[str, list[str]]:
        """``{cell: [hosts]}``."""
        return dict(self.endpoints['cells'])

    @property
    def pid(self) -> int | None:
        """The box's process id (its BMC process is its child)."""
        return self.endpoints.get('pid')

    @property
    def maildir(self) -> None:
        """Real Nova comes without an SMTP sink."""
        return None

    @property
    def smtp(self) -> None:
        return None

    @property
    def nova_url(self) -> str:
        return self.endpoints['nova']

    @property
    def control_url(self) -> str:
        return self.endpoints['control']
