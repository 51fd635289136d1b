"""Email notifier against a real SMTP server (aiosmtpd) on loopback.

Users come from a stand-in directory (a plain class with ``members``);
the Keystone-backed directory is tested against the simulator when it is
available.
"""
from __future__ import annotations

import collections

import pytest

from freezer_dr import conf as fdr_conf
from freezer_dr import exceptions
from freezer_dr.model import InstanceRecord
from freezer_dr.model import RecoveryRecord
from freezer_dr.notifiers.base import Event
from freezer_dr.notifiers.directory import DirectoryUser
from freezer_dr.notifiers.directory import ProjectMembers
from freezer_dr.notifiers.email import EmailNotifier
from freezer_dr.notifiers.smtp import SmtpTransport
from freezer_dr.simulator.smtp import free_tcp_port

T0 = 1_795_000_000.0
ADMINS = ['ops@example.org', 'oncall@example.org']
ALICE = DirectoryUser('u-alice', 'alice', 'alice@example.org')
BOB = DirectoryUser('u-bob', 'bob', 'bob@example.org')
CAROL = DirectoryUser('u-carol', 'carol', 'carol@example.org')


class StaticDirectory:
    """Project members from a dict; can be made to fail like Keystone."""

    def __init__(self, projects: dict[str, ProjectMembers]) -> None:
        self.projects = projects
        self.down = False
        self.calls: list[list[str]] = []

    def members(self, project_ids):
        project_ids = list(project_ids)
        self.calls.append(project_ids)
        if self.down:
            raise exceptions.NotifyFailed('Keystone unreachable')
        return {p: self.projects.get(p, ProjectMembers(p, p, ()))
                for p in project_ids}


def two_projects() -> StaticDirectory:
    return StaticDirectory({
        'p-alpha': ProjectMembers('p-alpha', 'alpha', (ALICE, CAROL)),
        'p-beta': ProjectMembers('p-beta', 'beta', (BOB, CAROL)),
    })


def recovered_event() -> Event:
    rec = RecoveryRecord(
        id='rec-1', host='compute-3', step='done', created_at=T0,
        finished_at=T0 + 40, reason='3 of 4 instances evacuated',
        fence={'host': 'compute-3', 'success': True, 'level': 'ipmi',
               'power_state': 'off', 'started_at': T0 + 1,
               'finished_at': T0 + 2.5},
        instances=[
            InstanceRecord('i-a1', 'alpha-web', 'p-alpha', state='done',
                           target_host='compute-1', requested_at=T0 + 3,
                           finished_at=T0 + 20),
            InstanceRecord('i-a2', 'alpha-db', 'p-alpha', state='failed',
                           error='rebuild failed: no valid host',
                           requested_at=T0 + 3, finished_at=T0 + 30),
            InstanceRecord('i-b1', 'beta-app', 'p-beta', state='done',
                           target_host='compute-2', requested_at=T0 + 3,
                           finished_at=T0 + 25),
            InstanceRecord('i-b2', 'beta-old', 'p-beta', state='skipped',
                           error='ERROR instance skipped'),
        ])
    return Event('recovered', 'host compute-3: 3 of 4 instances evacuated',
                 host='compute-3', recovery=rec.to_dict())


def notifier(sink, directory=None, admins=ADMINS, **transport_kw):
    transport = SmtpTransport(sink.host, sink.port,
                              ca_file=sink.ca_file, timeout=5,
                              **transport_kw)
    return EmailNotifier(transport, 'freezer-dr@example.org', admins,
                         directory)


def by_recipient(sink) -> dict[str, list]:
    out = collections.defaultdict(list)
    for msg in sink.messages():
        out[msg['X-RcptTo']].append(msg)
    return dict(out)


def parts(msg) -> dict[str, str]:
    assert msg.get_content_type() == 'multipart/alternative'
    return {p.get_content_type(): p.get_payload(decode=True).decode()
            for p in msg.get_payload()}


def test_users_get_one_mail_with_only_their_instances(smtp_server):
    sink = smtp_server()
    notifier(sink, two_projects()).send(recovered_event(), 'rec-1:done')
    mails = by_recipient(sink)
    assert sorted(mails) == sorted(
        ADMINS + [ALICE.email, BOB.email, CAROL.email])
    assert all(len(m) == 1 for m in mails.values())
    alice = parts(mails[ALICE.email][0])
    bob = parts(mails[BOB.email][0])
    carol = parts(mails[CAROL.email][0])
    for body in alice.values():
        assert 'alpha-web' in body and 'alpha-db' in body
        assert 'beta-app' not in body and 'beta-old' not in body
        assert 'evacuated to compute-1' in body
        assert 'rebuild failed: no valid host' in body
    for body in bob.values():
        assert 'beta-app' in body and 'alpha-web' not in body
        assert 'evacuated to compute-2' in body
        assert 'skipped: ERROR instance skipped' in body
    for body in carol.values():  # on both projects: one mail, both lists
        assert 'alpha-web' in body and 'beta-app' in body
    for msg in sink.messages():
        assert msg['X-Freezer-DR-Key'] == 'rec-1:done'
        assert msg['From'] == 'freezer-dr@example.org'


def test_admins_get_summary_with_fence_evidence_and_timings(smtp_server):
    sink = smtp_server()
    notifier(sink, two_projects()).send(recovered_event(), 'k1')
    mails = by_recipient(sink)
    summary = mails['ops@example.org'][0]
    assert summary['Subject'] == (
        '[freezer-dr] Recovery of compute-3 done: 2 of 4 instances '
        'evacuated')
    text = parts(summary)['text/plain']
    for expected in ('level:        ipmi', 'power state:  off',
                     '2026-11-18', 'took 1.5 s', 'fenced:                 '
                     '2.5 s', 'first evacuation sent:  3.0 s',
                     'last evacuation ended:  30.0 s',
                     'alpha-web', 'beta-old', 'no valid host'):
        assert expected in text, expected
    assert 'ipmi' in parts(summary)['text/html']


def test_alerts_go_to_admins_only(smtp_server):
    sink = smtp_server()
    directory = two_projects()
    event = recovered_event()
    event.kind = 'fence_failed'
    event.summary = 'host compute-3: BMC did not power off'
    notifier(sink, directory).send(event, 'rec-1:fence_failed')
    assert sorted(by_recipient(sink)) == sorted(ADMINS)
    assert directory.calls == []
    msg = sink.messages()[0]
    assert msg['Subject'].startswith(
        '[freezer-dr] Fencing failed, host held on compute-3')
    storm = Event('storm', '4 of 10 hosts down > 30 %',
                  details={'down': 4, 'hosts': 10})
    sink.clear()
    notifier(sink, directory).send(storm, 'storm:1')
    texts = [parts(m)['text/plain'] for m in sink.messages()]
    assert len(texts) == 2 and all('down: 4' in t for t in texts)


def test_starttls_with_auth(smtp_server):
    sink = smtp_server('starttls', credentials=('mailer', 's3cret-pw'))
    notifier(sink, admins=['ops@example.org'], security='starttls',
             username='mailer', password='s3cret-pw').send(
        recovered_event(), 'k')
    assert list(by_recipient(sink)) == ['ops@example.org']


def test_wrong_password_names_the_server_not_the_password(smtp_server):
    sink = smtp_server('starttls', credentials=('mailer', 's3cret-pw'))
    bad = notifier(sink, admins=['ops@example.org'], security='starttls',
                   username='mailer', password='wrong-pw-123')
    with pytest.raises(exceptions.NotifyFailed) as err:
        bad.send(recovered_event(), 'k')
    assert f'{sink.host}:{sink.port}' in str(err.value)
    assert '535' in str(err.value)
    assert 'wrong-pw-123' not in str(err.value)
    assert sink.messages() == []


def test_plain_connection_to_starttls_server_is_refused(smtp_server):
    sink = smtp_server('starttls', credentials=('mailer', 'pw'))
    with pytest.raises(exceptions.NotifyFailed, match='530|AUTH'):
        notifier(sink, admins=['ops@example.org'], username='mailer',
                 password='pw').send(recovered_event(), 'k')


def test_smtps(smtp_server):
    sink = smtp_server('ssl', credentials=('mailer', 'pw'))
    notifier(sink, admins=['ops@example.org'], security='ssl',
             username='mailer', password='pw').send(recovered_event(), 'k')
    assert list(by_recipient(sink)) == ['ops@example.org']


def test_untrusted_certificate_is_notify_failed(smtp_server):
    sink = smtp_server('ssl')
    transport = SmtpTransport(sink.host, sink.port, security='ssl',
                              timeout=5)  # system CAs only
    with pytest.raises(exceptions.NotifyFailed, match='TLS'):
        EmailNotifier(transport, 'f@x', ['ops@example.org']).send(
            recovered_event(), 'k')


def test_server_down_is_notify_failed():
    port = free_tcp_port()
    transport = SmtpTransport('127.0.0.1', port, timeout=2)
    with pytest.raises(exceptions.NotifyFailed,
                       match=f'127.0.0.1:{port} unreachable'):
        EmailNotifier(transport, 'f@x', ['ops@example.org']).send(
            recovered_event(), 'k')


def test_template_override_dir(smtp_server, tmp_path):
    (tmp_path / 'user_recovery.subject').write_text(
        'Custom: {{ user.name }} lost {{ projects | length }} project(s)')
    sink = smtp_server()
    transport = SmtpTransport(sink.host, sink.port, timeout=5)
    EmailNotifier(transport, 'f@x', ['ops@example.org'], two_projects(),
                  templates_dir=str(tmp_path)).send(recovered_event(), 'k')
    mails = by_recipient(sink)
    assert mails[CAROL.email][0]['Subject'] == 'Custom: carol lost 2 ' \
        'project(s)'
    assert mails['ops@example.org'][0]['Subject'].startswith(
        '[freezer-dr] Recovery of compute-3')


def test_retry_after_partial_failure_does_not_duplicate(smtp_server):
    sink = smtp_server()
    sink.refuse[BOB.email] = '451 4.3.0 mailbox busy, try later'
    mailer = notifier(sink, two_projects())
    sent: set[str] = set()
    with pytest.raises(exceptions.NotifyFailed, match='451'):
        mailer.send(recovered_event(), 'k', already=sent)
    assert sorted(by_recipient(sink)) == sorted(ADMINS + [ALICE.email])
    assert sent == {'k/admin/ops@example.org', 'k/admin/oncall@example.org',
                    'k/user/u-alice'}
    sink.refuse.clear()
    mailer.send(recovered_event(), 'k', already=sent)
    mailer.send(recovered_event(), 'k', already=sent)  # nothing left
    mails = by_recipient(sink)
    assert sorted(mails) == sorted(
        ADMINS + [ALICE.email, BOB.email, CAROL.email])
    assert all(len(m) == 1 for m in mails.values())


def test_takeover_with_recorded_subkeys_sends_the_rest_once(smtp_server):
    sink = smtp_server()
    first = notifier(sink, two_projects()).deliveries(recovered_event(), 'k')
    recorded = {d.subkey for d in first[:3]}
    for d in first[:3]:
        d.deliver()
    # A new leader builds its own notifier and skips what was recorded.
    for d in notifier(sink, two_projects()).deliveries(
            recovered_event(), 'k'):
        if d.subkey not in recorded:
            d.deliver()
    counts = collections.Counter(m['X-RcptTo'] for m in sink.messages())
    assert set(counts.values()) == {1} and len(counts) == 5
    ids = [m['Message-ID'] for m in sink.messages()]
    assert len(set(ids)) == 5


def test_permanently_refused_user_does_not_block_the_others(smtp_server):
    sink = smtp_server()
    sink.refuse[ALICE.email] = '550 5.1.1 no such user'
    notifier(sink, two_projects()).send(recovered_event(), 'k')
    assert sorted(by_recipient(sink)) == sorted(
        ADMINS + [BOB.email, CAROL.email])


def test_keystone_down_admins_still_hear_users_on_retry(smtp_server):
    sink = smtp_server()
    directory = two_projects()
    directory.down = True
    mailer = notifier(sink, directory)
    sent: set[str] = set()
    with pytest.raises(exceptions.NotifyFailed, match='Keystone'):
        mailer.send(recovered_event(), 'k', already=sent)
    assert sorted(by_recipient(sink)) == sorted(ADMINS)
    directory.down = False
    mailer.send(recovered_event(), 'k', already=sent)
    counts = collections.Counter(m['X-RcptTo'] for m in sink.messages())
    assert len(counts) == 5 and set(counts.values()) == {1}


def test_from_config(smtp_server, tmp_path):
    sink = smtp_server('starttls', credentials=('mailer', 'pw'))
    conf = fdr_conf.new_config()
    conf([], default_config_files=[])
    for name, value in {'smtp_host': sink.host, 'smtp_port': sink.port,
                        'security': 'starttls', 'username': 'mailer',
                        'password': 'pw', 'ca_file': sink.ca_file,
                        'admin_addresses': ['ops@example.org'],
                        'subject_prefix': '[dr]'}.items():
        conf.set_override(name, value, group='email')
    mailer = EmailNotifier.from_config(conf, connection=None)
    assert mailer.directory is None
    mailer.send(recovered_event(), 'k')
    assert sink.messages()[0]['Subject'].startswith('[dr] Recovery')


def test_username_without_password_is_config_error():
    with pytest.raises(exceptions.ConfigError, match='password'):
        SmtpTransport('127.0.0.1', 25, username='mailer')
