"""The simulator's SMTP sink: mail sent to it lands in its maildir."""
from __future__ import annotations

import json
import mailbox
import smtplib
import ssl
import subprocess
import sys
import time
from email.message import EmailMessage

import pytest

from freezer_dr.simulator.handle import SimError


def test_mail_to_the_sink_lands_in_the_maildir(sim_cloud):
    msg = EmailMessage()
    msg['From'] = 'freezer-dr@example.org'
    msg['To'] = 'cloud-admin@example.org'
    msg['Subject'] = 'compute-1 recovered'
    msg.set_content('3 instances evacuated')
    host, port = sim_cloud.smtp
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.send_message(msg)
    box = mailbox.Maildir(sim_cloud.maildir, create=False)
    (stored,) = [box.get_message(k) for k in box.keys()]
    assert stored['Subject'] == 'compute-1 recovered'
    assert stored['X-RcptTo'] == 'cloud-admin@example.org'


def test_starttls_with_auth_as_written_in_the_config(sim_cloud_factory):
    cloud = sim_cloud_factory(bmcs=False, extra_args=[
        '--smtp-security', 'starttls', '--smtp-auth'])
    ends = cloud.endpoints
    conf = open(cloud.config_file).read()
    assert f"ca_file = {ends['smtp_ca_file']}" in conf
    password = open(ends['smtp_password_file']).read()
    host, port = cloud.smtp
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.starttls(context=ssl.create_default_context(
            cafile=ends['smtp_ca_file']))
        with pytest.raises(smtplib.SMTPAuthenticationError) as info:
            smtp.login(ends['smtp_username'], 'wrong')
        assert info.value.smtp_code == 535
        smtp.login(ends['smtp_username'], password)
        smtp.sendmail('a@example.org', ['b@example.org'], b'Subject: x\n\ny')
    assert len(mailbox.Maildir(cloud.maildir, create=False)) == 1


def _send(cloud, timeout: float = 10) -> None:
    host, port = cloud.smtp
    with smtplib.SMTP(host, port, timeout=timeout) as smtp:
        smtp.sendmail('a@example.org', ['b@example.org'], b'Subject: x\n\ny')


def _inject_smtp(cloud, mode: str, delay: float = 0.0) -> dict:
    out = subprocess.run(
        [sys.executable, '-m', 'freezer_dr.cmd.sim', '--state-dir',
         cloud.state_dir, 'inject', '--smtp-mode', mode, '--smtp-delay',
         str(delay)], check=True, capture_output=True, text=True,
        timeout=60).stdout
    return json.loads(out.splitlines()[-1])


def test_slow_smtp_answers_late_then_heals(sim_cloud):
    assert _inject_smtp(sim_cloud, 'slow', 0.6) == {'mode': 'slow',
                                                    'delay': 0.6}
    smtp = smtplib.SMTP(*sim_cloud.smtp, timeout=0.3)
    with pytest.raises(smtplib.SMTPServerDisconnected,
                       match='timed out'):     # MAIL answered too late
        smtp.sendmail('a@example.org', ['b@example.org'], b'Subject: x\n\ny')
    smtp.close()
    started = time.monotonic()
    _send(sim_cloud)                           # MAIL, RCPT, DATA: 3 waits
    assert time.monotonic() - started >= 1.8
    _inject_smtp(sim_cloud, 'none')
    started = time.monotonic()
    _send(sim_cloud)
    assert time.monotonic() - started < 1.0
    assert len(mailbox.Maildir(sim_cloud.maildir, create=False)) == 2


def test_rejecting_smtp_answers_451_then_heals(sim_cloud):
    _inject_smtp(sim_cloud, 'reject')
    with pytest.raises(smtplib.SMTPSenderRefused) as info:
        _send(sim_cloud)
    assert info.value.smtp_code == 451
    _inject_smtp(sim_cloud, 'none')
    _send(sim_cloud)
    assert len(mailbox.Maildir(sim_cloud.maildir, create=False)) == 1


def test_refusing_smtp_closes_its_port_then_listens_again(sim_cloud):
    _inject_smtp(sim_cloud, 'refuse')
    with pytest.raises(ConnectionRefusedError):
        _send(sim_cloud)
    _inject_smtp(sim_cloud, 'none')
    _send(sim_cloud)
    assert len(mailbox.Maildir(sim_cloud.maildir, create=False)) == 1


def test_unknown_smtp_fault_mode_is_a_400_naming_the_modes(sim_cloud):
    with pytest.raises(SimError) as info:
        sim_cloud.control('POST', '/sim/smtp', {'mode': 'flaky'})
    assert '400' in str(info.value) and 'slow' in str(info.value)
