"""Deadline benchmark: prints JSON figures (not a test).

    python -m tests.benchmarks.deadlines [--runs 10] [--requests 300]

- ``request_overhead_ms``: mean cost per GET of the bounded adapter over
  keystoneauth's own adapter (same loopback server, keep-alive).
- ``overshoot_ms``: how long after its deadline a call against a peer
  that dribbles one byte every 0.2 s returned its error (Nova write,
  webhook POST, SMTP delivery), median and max over ``--runs``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

import requests
from keystoneauth1 import session as ks_session

from freezer_dr import cloud
from freezer_dr import deadline_http
from freezer_dr import exceptions
from freezer_dr.evacuators.nova import NovaEvacuator
from freezer_dr.notifiers.base import Event
from freezer_dr.notifiers.email import EmailNotifier
from freezer_dr.notifiers.smtp import SmtpTransport
from freezer_dr.notifiers.webhook import WebhookNotifier
from tests.fixtures.dribble import DribblingHttp
from tests.fixtures.smtp import DribblingSmtp

TIMEOUT = 1.0
EVENT = Event('storm', 'benchmark')


def _per_request_ms(adapter, url: str, count: int) -> float:
    session = requests.Session()
    session.mount('http://', adapter)
    session.get(url, timeout=5)                     # connect once
    started = time.perf_counter()
    for _ in range(count):
        session.get(url, timeout=5)
    return (time.perf_counter() - started) / count * 1000


def request_overhead(count: int, rounds: int = 5) -> dict[str, float]:
    """Rounds alternate between the two adapters (a shared machine's
    load shifts); the median round of each is reported."""
    plain, bounded = [], []
    with DribblingHttp(lambda m, p: (200, {'ok': True}, 'fast')) as server:
        for i in range(rounds * 2):
            if i % 4 in (0, 3):
                plain.append(_per_request_ms(
                    ks_session.TCPKeepAliveAdapter(), server.url, count))
            else:
                bounded.append(_per_request_ms(
                    deadline_http.BoundedAdapter(5.0), server.url, count))
    plain_ms, bounded_ms = statistics.median(plain), statistics.median(
        bounded)
    return {'plain_ms': round(plain_ms, 3),
            'bounded_ms': round(bounded_ms, 3),
            'overhead_ms': round(bounded_ms - plain_ms, 3)}


def _overshoot(call) -> float:
    started = time.monotonic()
    try:
        call()
    except (exceptions.CloudUnavailable, exceptions.NotifyFailed):
        pass
    else:
        raise AssertionError('the call did not fail')
    return (time.monotonic() - started - TIMEOUT) * 1000


def _nova_write(directory: str):
    nova = DribblingHttp(lambda m, p: (500, None, 'fast'))

    def answer(method, path):
        if path.rstrip('/') in ('', '/v2.1'):
            return 200, {'version': {
                'id': 'v2.1', 'status': 'CURRENT', 'version': '2.100',
                'min_version': '2.1', 'links': [
                    {'rel': 'self', 'href': f'{nova.url}/v2.1/'}]}}, 'fast'
        return 200, {}, 'dribble'
    nova.answer = answer
    path = f'{directory}/clouds.yaml'
    with open(path, 'w') as out:
        out.write('clouds:\n  b:\n    auth_type: admin_token\n    auth:\n'
                  f'      endpoint: {nova.url}/v2.1\n      token: t\n')
    evacuator = NovaEvacuator(cloud.connect_to('b', path, None, TIMEOUT,
                                               '2.94'))
    return nova, lambda: evacuator.evacuate('vm-1', guard=lambda: None)


def overshoots(runs: int) -> dict[str, dict[str, float]]:
    out = {}
    with tempfile.TemporaryDirectory() as directory:
        nova, write = _nova_write(directory)
        with nova:
            out['nova_write'] = [_overshoot(write) for _ in range(runs)]
    with DribblingHttp(lambda m, p: (200, {}, 'dribble')) as hook:
        notifier = WebhookNotifier(hook.url + '/h', timeout=TIMEOUT)
        out['webhook_post'] = [_overshoot(lambda: notifier.send(EVENT, 'k'))
                               for _ in range(runs)]
    smtp = DribblingSmtp()
    try:
        mailer = EmailNotifier(SmtpTransport(smtp.host, smtp.port,
                                             timeout=TIMEOUT),
                               'f@x', ['ops@example.org'])
        [delivery] = mailer.deliveries(EVENT, 'k')
        out['smtp_delivery'] = [_overshoot(delivery.deliver)
                                for _ in range(runs)]
    finally:
        smtp.close()
    return {name: {'median': round(statistics.median(v), 1),
                   'max': round(max(v), 1)} for name, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--runs', type=int, default=10)
    parser.add_argument('--requests', type=int, default=300)
    args = parser.parse_args()
    print(json.dumps({'timeout_s': TIMEOUT,
                      'request_overhead_ms': request_overhead(args.requests),
                      'overshoot_ms': overshoots(args.runs)}, indent=2))


if __name__ == '__main__':
    main()
