"""One mail delivery is one SMTP session bounded as a whole by
``[email] timeout``: a slow or dribbling server cannot make a mail be
committed after the deadline the engine's guard checked, and the caller
hears by then (S2). Ground truth: the sink's maildir and commit times.
"""
from __future__ import annotations

import time

import pytest

from freezer_dr import exceptions
from freezer_dr.notifiers.base import Event
from freezer_dr.notifiers.email import EmailNotifier
from freezer_dr.notifiers.smtp import SmtpTransport
from tests.fixtures.smtp import DribblingSmtp

TIMEOUT = 1.0
#: scheduling slack on a loaded 2-core machine; the servers below keep a
#: session alive for 1.8 s (slow) or 12+ s (dribbling) without a deadline
SLACK = 0.7
ADMIN = 'ops@example.org'
EVENT = Event('fence_failed', 'host c3: BMC did not power off', host='c3')


def _mailer(host, port, timeout=TIMEOUT, **transport_kw) -> EmailNotifier:
    return EmailNotifier(SmtpTransport(host, port, timeout=timeout,
                                       **transport_kw),
                         'freezer-dr@example.org', [ADMIN])


def _deliver_once(mailer: EmailNotifier, key: str = 'k'):
    """Deliver the admin mail; (seconds taken, NotifyFailed or None)."""
    [delivery] = mailer.deliveries(EVENT, key)
    started = time.monotonic()
    try:
        delivery.deliver()
        error = None
    except exceptions.NotifyFailed as failure:
        error = failure
    return time.monotonic() - started, error


SECURITY = {'none': {}, 'starttls': {'credentials': ('mailer', 'pw')},
            'ssl': {'credentials': ('mailer', 'pw')}}


@pytest.mark.parametrize('security', sorted(SECURITY))
def test_slow_server_never_gets_the_mail_committed_after_the_deadline(
        slow_smtp_server, security):
    sink = slow_smtp_server(security, **SECURITY[security])
    # Each answer well within the per-operation timeout; together, more
    # than the whole budget.
    sink.delays.update(EHLO=0.6, MAIL=0.6, RCPT=0.6)
    auth = ({'username': 'mailer', 'password': 'pw'}
            if SECURITY[security] else {})
    mailer = _mailer(sink.host, sink.port, security=security,
                     ca_file=sink.ca_file, **auth)
    wall = time.time()
    took, error = _deliver_once(mailer)
    time.sleep(2.5)                 # a late commit would land by now
    late = [c - wall for c in sink.commits if c > wall + TIMEOUT]
    assert late == []
    assert sink.messages() == []
    assert took < TIMEOUT + SLACK
    assert error is not None and 'message not committed' in str(error)
    assert f'{sink.host}:{sink.port}' in str(error)
    assert 'pw' not in str(error).replace(sink.host, '')


def test_dribbling_server_is_left_by_the_deadline_before_data():
    server = DribblingSmtp(interval=0.2)
    try:
        took, error = _deliver_once(_mailer(server.host, server.port))
        # The greeting alone takes ~5 s at this pace.
        assert took < TIMEOUT + SLACK
        assert error is not None and 'within 1 s' in str(error)
        time.sleep(1.0)
        assert server.committed == []
        assert not any(line.upper().startswith('DATA')
                       for _, line in server.log)
    finally:
        server.close()


def test_resent_mail_after_an_unknown_outcome_has_the_same_message_id(
        slow_smtp_server):
    """At-least-once: the mail is committed but its 250 comes after the
    deadline, so the engine cannot record it and sends it again; the
    copy carries the same Message-ID, so mail clients fold the two."""
    sink = slow_smtp_server()
    sink.delays.update(DATA=3.0)
    mailer = _mailer(sink.host, sink.port)
    took, error = _deliver_once(mailer, 'rec-1:fence_failed:email')
    assert took < TIMEOUT + SLACK
    assert 'acceptance unknown' in str(error)
    sink.delays.clear()
    took, error = _deliver_once(mailer, 'rec-1:fence_failed:email')
    assert error is None
    first, second = sink.messages()
    assert first['Message-ID'] == second['Message-ID']
    assert first['X-Freezer-DR-Subkey'] == second['X-Freezer-DR-Subkey']
