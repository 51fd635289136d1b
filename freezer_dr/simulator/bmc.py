"""All simulated BMCs of a test cloud in one process (IPMI 2.0 lanplus
over UDP, or Redfish over HTTPS).

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
               "power": "on",          # initial power, memory mode only
               "kind": "ipmi"}]}       # or "redfish" (default ipmi)

- A ``redfish`` BMC is sushy-tools' emulator on its own HTTPS port
  (:mod:`freezer_dr.simulator.bmc_redfish`); all of them share one
  self-signed certificate written to ``tls_dir`` (default: the ready
  file's directory) as ``cert.pem``, which is also the CA file.

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
  rename): ``{"pid": N, "control_port": P, "bmcs": {"compute-1": 40001},
  "kinds": {"compute-1": "ipmi"}, "ca_file": PATH or null}``.
  It is removed on exit. SIGTERM or SIGINT: exit 0.

Control API (HTTP/JSON on 127.0.0.1:control_port):

- ``GET /bmcs`` -> ``{"bmcs": {host: {"kind", "address", "port",
  "power", "fault": {"mode", "delay"}}}}`` (``power`` is "unknown" if
  unreadable).
- ``POST /bmcs/{host}/fault`` ``{"mode": M, "delay": seconds}`` -> 200 and
  the host's entry; M is ``none``, ``unreachable`` (drop every packet),
  ``slow`` (each request is handled, and so answered, ``delay`` s after
  it arrives), ``stuck`` (accept off, never power off) or
  ``wrong-password`` (the BMC's password changed: new logins fail; a
  session opened before stays valid, as on many real BMCs; Redfish
  answers 401). A Redfish BMC that is ``unreachable`` accepts TCP
  connections and never answers. 400 on a bad
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
import ssl
import sys
import threading
import time
import typing as t

from oslo_log import log as logging

from freezer_dr.simulator import bmc_ipmi

LOG = logging.getLogger(__name__)

SERVE_TICK = 0.02
BMC_KINDS = ('ipmi', 'redfish')

Bmc = t.Any     # bmc_ipmi.SimulatedBmc or bmc_redfish.RedfishBmc


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
        if entry.get('kind', 'ipmi') not in BMC_KINDS:
            raise ValueError(f'{path}: bmcs[{i}] bad "kind" (one of '
                             f'{", ".join(BMC_KINDS)})')
    return spec


def _tls_context(directory: str, address: str
                 ) -> tuple[ssl.SSLContext, str]:
    """A server context with a new self-signed certificate for
    ``address``; its path."""
    from freezer_dr.simulator.certs import make_self_signed_cert
    os.makedirs(directory, exist_ok=True)
    cert, key = make_self_signed_cert(directory, address)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx, cert


def build_bmcs(spec: dict[str, t.Any], log: bmc_ipmi.PowerLog
               ) -> tuple[dict[str, Bmc], str | None]:
    """Create and bind one BMC per SPEC entry; return them and the CA
    file of the Redfish BMCs (None if there is none)."""
    bmcs: dict[str, Bmc] = {}
    tls: ssl.SSLContext | None = None
    ca_file = None
    for entry in spec['bmcs']:
        host = entry['host']
        if spec.get('power_url'):
            power: bmc_ipmi.PowerSwitch = bmc_ipmi.HttpPower(
                spec['power_url'].replace('{host}', host))
        else:
            power = bmc_ipmi.MemoryPower(entry.get('power', 'on'))
        args = (host, entry.get('address', '127.0.0.1'),
                int(entry.get('port', 0)), entry['username'],
                entry['password'], power, log)
        if entry.get('kind', 'ipmi') == 'redfish':
            from freezer_dr.simulator import bmc_redfish
            if tls is None:
                bmc_redfish.use_sim_driver()
                tls, ca_file = _tls_context(
                    spec.get('tls_dir') or os.path.dirname(
                        os.path.abspath(spec['ready_file'])), args[1])
            bmcs[host] = bmc_redfish.RedfishBmc(*args, tls=tls)
        else:
            bmcs[host] = bmc_ipmi.SimulatedBmc(*args)
    return bmcs, ca_file


def describe(bmc: Bmc) -> dict[str, t.Any]:
    """A BMC's public state (never its credentials)."""
    try:
        power = bmc.power.get()
    except bmc_ipmi.PowerUnavailable:
        power = 'unknown'
    return {'kind': bmc.kind, 'address': bmc.address, 'port': bmc.port,
            'power': power,
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

    def __init__(self, port: int, bmcs: dict[str, Bmc]) -> None:
        self.bmcs = bmcs
        super().__init__(('127.0.0.1', port), ControlHandler)


def write_ready(path: str, control_port: int, bmcs: dict[str, Bmc],
                ca_file: str | None) -> None:
    """Write the ready file atomically."""
    tmp = f'{path}.tmp.{os.getpid()}'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump({'pid': os.getpid(), 'control_port': control_port,
                   'bmcs': {h: b.port for h, b in bmcs.items()},
                   'kinds': {h: b.kind for h, b in bmcs.items()},
                   'ca_file': ca_file}, f)
    os.replace(tmp, path)


def serve(bmcs: dict[str, Bmc],
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
    try:
        bmcs, ca_file = build_bmcs(spec, log)
    except (OSError, ImportError) as exc:
        print(f'bmc: cannot start the BMCs: {exc}', file=sys.stderr)
        return 2
    control = ControlServer(int(spec.get('control_port') or 0), bmcs)
    threading.Thread(target=control.serve_forever, name='bmc-control',
                     daemon=True).start()
    write_ready(spec['ready_file'], control.server_address[1], bmcs,
                ca_file)
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
