"""All simulated BMCs of a test cloud in one process (IPMI 2.0 lanplus).

Run::

    python -m freezer_dr.simulator.bmc --spec SPEC.json

SPEC (JSON file; keep it mode 0600, it holds the BMC passwords)::

    {"power_url": "http://127.0.0.1:PORT/sim/hosts/{host}/power",  # or null
     "log": "/path/bmc-log.jsonl",
     "control_port": 0,               # 0 = pick a free port
     "ready_file": "/path/bmc.ready",
     "bmcs": [{"host": "compute-1", "address": "127.0.0.1",
               "port": 40001,          # 0 = pick a free UDP port
               "username": "admin", "password": "secret",
               "power": "on"}]}        # initial power, memory mode only

- ``power_url`` set: power is read with ``GET power_url`` ->
  ``{"power": "on"|"off"}`` and switched with ``POST power_url``
  ``{"power": "on"|"off"}`` (``{host}`` is replaced by the host name).
  ``cycle`` is off then on; ``reset`` is off then on if the node was on;
  ``soft`` is off. ``power_url`` null: power is kept in memory.
- Every chassis status read and chassis control command appends one line
  to ``log`` (flushed per line)::

    {"t": 1700000000.1, "host": "compute-1",
     "command": "off"|"on"|"status"|"soft"|"cycle"|"reset",
     "result": "ok"|"error", "power_after": "on"|"off"|"unknown"}

  ``power_after`` is the node's real power after the command: a BMC in
  ``stuck`` mode logs ``"command": "off", "result": "ok",
  "power_after": "on"``. Safety checks should look for
  ``command in (off, soft) and power_after == "off"``.
- When every BMC listens, ``ready_file`` is written atomically (tmp +
  rename): ``{"pid": N, "control_port": P, "bmcs": {"compute-1": 40001}}``.
  It is removed on exit. SIGTERM or SIGINT: exit 0.

Control API (HTTP/JSON on 127.0.0.1:control_port):

- ``GET /bmcs`` -> ``{"bmcs": {host: {"address", "port", "power",
  "fault": {"mode", "delay"}}}}`` (``power`` is "unknown" if unreadable).
- ``POST /bmcs/{host}/fault`` ``{"mode": M, "delay": seconds}`` -> 200 and
  the host's entry; M is ``none``, ``unreachable`` (drop every packet),
  ``slow`` (each request is handled, and so answered, ``delay`` s after
  it arrives), ``stuck`` (accept off, never power off) or
  ``wrong-password`` (the BMC's password changed: new logins fail; a
  session opened before stays valid, as on many real BMCs). 400 on a bad
  mode, 404 on an unknown host. Faults apply at once to every session.
- ``POST /bmcs/{host}/power`` ``{"power": "on"|"off"}`` sets the ground
  truth without IPMI and without a log line (test set-up).
"""
from __future__ import annotations

import argparse
import http.server
import json
import logging as std_logging
import os
import signal
import sys
import threading
import time
import typing as t

from oslo_log import log as logging

from freezer_dr.simulator import bmc_ipmi

LOG = logging.getLogger(__name__)

SERVE_TICK = 0.02


def load_spec(path: str) -> dict[str, t.Any]:
    """Read and check the SPEC file; raise ValueError naming the field."""
    with open(path, encoding='utf-8') as f:
        spec = json.load(f)
    for key in ('log', 'ready_file', 'bmcs'):
        if key not in spec:
            raise ValueError(f'{path}: missing "{key}"')
    if spec.get('power_url') and '{host}' not in spec['power_url']:
        raise ValueError(f'{path}: "power_url" lacks "{{host}}"')
    hosts = set()
    for i, entry in enumerate(spec['bmcs']):
        for key in ('host', 'username', 'password'):
            if not entry.get(key):
                raise ValueError(f'{path}: bmcs[{i}] missing "{key}"')
        if entry['host'] in hosts:
            raise ValueError(f'{path}: bmcs[{i}] duplicate host')
        hosts.add(entry['host'])
        if entry.get('power', 'on') not in ('on', 'off'):
            raise ValueError(f'{path}: bmcs[{i}] bad "power"')
    return spec


def build_bmcs(spec: dict[str, t.Any],
               log: bmc_ipmi.PowerLog) -> dict[str, bmc_ipmi.SimulatedBmc]:
    """Create and bind one SimulatedBmc per SPEC entry."""
    bmcs = {}
    for entry in spec['bmcs']:
        host = entry['host']
        if spec.get('power_url'):
            power: bmc_ipmi.PowerSwitch = bmc_ipmi.HttpPower(
                spec['power_url'].replace('{host}', host))
        else:
            power = bmc_ipmi.MemoryPower(entry.get('power', 'on'))
        bmcs[host] = bmc_ipmi.SimulatedBmc(
            host, entry.get('address', '127.0.0.1'), int(entry.get('port', 0)),
            entry['username'], entry['password'], power, log)
    return bmcs


def describe(bmc: bmc_ipmi.SimulatedBmc) -> dict[str, t.Any]:
    """A BMC's public state (never its credentials)."""
    try:
        power = bmc.power.get()
    except bmc_ipmi.PowerUnavailable:
        power = 'unknown'
    return {'address': bmc.address, 'port': bmc.port, 'power': power,
            'fault': {'mode': bmc.fault.mode, 'delay': bmc.fault.delay}}


class ControlHandler(http.server.BaseHTTPRequestHandler):
    """The fault-injection endpoint."""

    server: ControlServer

    def log_message(self, format: str, *args: t.Any) -> None:
        LOG.debug('control: ' + format, *args)

    def _reply(self, status: int, body: dict[str, t.Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip('/') != '/bmcs':
            return self._reply(404, {'error': 'not found'})
        self._reply(200, {'bmcs': {h: describe(b) for h, b in
                                   self.server.bmcs.items()}})

    def do_POST(self) -> None:
        parts = self.path.strip('/').split('/')
        if len(parts) != 3 or parts[0] != 'bmcs' \
                or parts[2] not in ('fault', 'power'):
            return self._reply(404, {'error': 'not found'})
        bmc = self.server.bmcs.get(parts[1])
        if bmc is None:
            return self._reply(404, {'error': f'no BMC for {parts[1]}'})
        try:
            length = int(self.headers.get('Content-Length') or 0)
            body = json.loads(self.rfile.read(length) or b'{}')
            if parts[2] == 'fault':
                bmc.fault = bmc_ipmi.Fault(str(body.get('mode', 'none')),
                                           float(body.get('delay', 0.0)))
                LOG.info('BMC %s fault: %s', bmc.host, bmc.fault)
            else:
                if body.get('power') not in ('on', 'off'):
                    raise ValueError('power must be "on" or "off"')
                bmc.power.set(body['power'])
        except (ValueError, TypeError, AttributeError) as exc:
            return self._reply(400, {'error': str(exc)})
        except bmc_ipmi.PowerUnavailable as exc:
            return self._reply(502, {'error': str(exc)})
        self._reply(200, describe(bmc))


class ControlServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int,
                 bmcs: dict[str, bmc_ipmi.SimulatedBmc]) -> None:
        self.bmcs = bmcs
        super().__init__(('127.0.0.1', port), ControlHandler)


def write_ready(path: str, control_port: int,
                bmcs: dict[str, bmc_ipmi.SimulatedBmc]) -> None:
    """Write the ready file atomically."""
    tmp = f'{path}.tmp.{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump({'pid': os.getpid(), 'control_port': control_port,
                   'bmcs': {h: b.port for h, b in bmcs.items()}}, f)
    os.replace(tmp, path)


def serve(bmcs: dict[str, bmc_ipmi.SimulatedBmc],
          stop: threading.Event) -> None:
    """pyghmi's event loop plus release of delayed ('slow') replies."""
    session = bmc_ipmi.ipmi_session.Session
    while not stop.is_set():
        session.wait_for_rsp(SERVE_TICK)
        now = time.monotonic()
        for bmc in bmcs.values():
            bmc.release_due(now)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--spec', required=True, help='SPEC JSON file')
    parser.add_argument('--debug', action='store_true')
    args = parser.parse_args(argv)
    std_logging.basicConfig(
        level=std_logging.DEBUG if args.debug else std_logging.INFO,
        format='%(asctime)s bmc %(levelname)s %(message)s')
    try:
        spec = load_spec(args.spec)
    except (OSError, ValueError) as exc:
        print(f'bmc: bad spec: {exc}', file=sys.stderr)
        return 2

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    bmc_ipmi.use_nonblocking_reads()
    log = bmc_ipmi.PowerLog(spec['log'])
    bmcs = build_bmcs(spec, log)
    control = ControlServer(int(spec.get('control_port') or 0), bmcs)
    threading.Thread(target=control.serve_forever, name='bmc-control',
                     daemon=True).start()
    write_ready(spec['ready_file'], control.server_address[1], bmcs)
    LOG.info('%d BMCs listening, control on port %d', len(bmcs),
             control.server_address[1])
    try:
        serve(bmcs, stop)
    finally:
        control.shutdown()
        for bmc in bmcs.values():
            bmc.close()
        log.close()
        try:
            os.unlink(spec['ready_file'])
        except FileNotFoundError:
            pass
    return 0


if __name__ == '__main__':
    sys.exit(main())
