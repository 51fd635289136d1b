"""Start the simulated BMC process for a test and talk to its control API."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import typing as t
import urllib.request

import pytest

from freezer_dr.simulator.child import stop_process


def password(host: str) -> str:
    """The test password of the BMC of ``host``."""
    return f'S3cret-{host}'


def bmc_entry(host: str, **extra: t.Any) -> dict[str, t.Any]:
    """A BMC entry for :class:`BmcProcess`: user admin, :func:`password`."""
    return {'host': host, 'username': 'admin', 'password': password(host),
            **extra}


def module_bmcs(entries: list[dict[str, t.Any]]) -> tuple[t.Any, t.Any]:
    """A test module's ``bmcs`` fixture (one BMC process for the module,
    serving ``entries``) and its autouse ``clear_faults``, which lifts
    faults after each test so abandoned logins finish quickly. Use as
    ``bmcs, clear_faults = module_bmcs([...])``."""
    @pytest.fixture(scope='module')
    def bmcs(tmp_path_factory):
        proc = BmcProcess(str(tmp_path_factory.mktemp('bmc')), entries)
        yield proc
        proc.stop()

    @pytest.fixture(autouse=True)
    def clear_faults(bmcs):
        yield
        bmcs.clear_faults()

    return bmcs, clear_faults


class BmcProcess:
    """``python -m freezer_dr.simulator.bmc`` in a private directory.

    Each entry of ``bmcs`` may say ``"kind": "redfish"`` (default ipmi).
    """

    def __init__(self, workdir: str, bmcs: list[dict[str, t.Any]],
                 power_url: str | None = None,
                 startup_timeout: float = 20.0) -> None:
        self.workdir = workdir
        self.log_path = os.path.join(workdir, 'bmc-log.jsonl')
        ready_file = os.path.join(workdir, 'bmc.ready')
        spec_path = os.path.join(workdir, 'bmc-spec.json')
        spec = {'power_url': power_url, 'log': self.log_path,
                'control_port': 0, 'ready_file': ready_file,
                'bmcs': [{'address': '127.0.0.1', 'port': 0, **b}
                         for b in bmcs]}
        fd = os.open(spec_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, 'w') as f:
            json.dump(spec, f)
        self.stderr = open(os.path.join(workdir, 'bmc.stderr'), 'wb')
        self.proc = subprocess.Popen(
            [sys.executable, '-m', 'freezer_dr.simulator.bmc',
             '--spec', spec_path],
            stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + startup_timeout
        while not os.path.exists(ready_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError('BMC process did not start: '
                                   + self.stderr_text())
            time.sleep(0.05)
        with open(ready_file) as f:
            self.ready = json.load(f)
        self.ports: dict[str, int] = self.ready['bmcs']
        #: CA file of the Redfish BMCs' self-signed certificate (or None)
        self.ca_file: str | None = self.ready.get('ca_file')
        self.control = f'http://127.0.0.1:{self.ready["control_port"]}'

    def _request(self, method: str, path: str,
                 body: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.control + path, data=data,
                                     method=method)
        with urllib.request.urlopen(req, timeout=5) as rsp:
            return json.loads(rsp.read())

    def state(self) -> dict[str, t.Any]:
        return self._request('GET', '/bmcs')['bmcs']

    def fault(self, host: str, mode: str, delay: float = 0.0) -> None:
        self._request('POST', f'/bmcs/{host}/fault',
                      {'mode': mode, 'delay': delay})

    def set_power(self, host: str, power: str) -> None:
        self._request('POST', f'/bmcs/{host}/power', {'power': power})

    def log(self) -> list[dict[str, t.Any]]:
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def commands(self, host: str) -> list[tuple[str, str, str]]:
        """The power commands ``host``'s BMC received, reads left out:
        (command, result, power after)."""
        return [(e['command'], e['result'], e['power_after'])
                for e in self.log()
                if e['host'] == host and e['command'] != 'status']

    def clear_faults(self) -> None:
        """Lift every fault (abandoned calls then finish quickly)."""
        for host, state in self.state().items():
            if state['fault']['mode'] != 'none':
                self.fault(host, 'none')

    def stderr_text(self) -> str:
        if not self.stderr.closed:
            self.stderr.flush()
        with open(self.stderr.name, errors='replace') as f:
            return f.read()

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after 5 s; return the exit code."""
        code = stop_process(self.proc, timeout=5)
        self.stderr.close()
        return code
