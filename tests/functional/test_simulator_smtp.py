"""The simulator's SMTP sink: mail sent to it lands in its maildir."""
from __future__ import annotations

import mailbox
import smtplib
import ssl
from email.message import EmailMessage

import pytest


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
