"""The simulator's SMTP sink: mail sent to it lands in its maildir."""
from __future__ import annotations

import mailbox
import smtplib
from email.message import EmailMessage


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
