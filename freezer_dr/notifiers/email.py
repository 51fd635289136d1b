"""Email notifier: per-user mails and admin summaries over SMTP.

For a ``recovered`` event every user with a role on a project that owned
an affected instance gets one mail listing their projects' instances and
what became of each; every admin address gets the summary (fence
evidence, outcomes, timings). Other kinds (``fence_failed``, ``storm``,
``blind``, ``held``) go to admins only. Mails are HTML + plain text
rendered from Jinja2 templates (see :mod:`freezer_dr.notifiers.render`).

Exactly one mail per recipient per event key: :meth:`deliveries` returns
one :class:`~freezer_dr.notifiers.base.Delivery` per recipient with a
stable sub-key (``<key>/admin/<address>``, ``<key>/user/<user id>``).
The engine checks its lease, calls ``deliver()``, and records the
sub-key in the recovery record before the next one; after a retry or a
takeover it skips recorded sub-keys. ``send(event, key, already)`` does
the same loop for simple callers, adding each delivered sub-key to
``already`` (also when it raises). The only possible duplicate is the
one mail in flight when a leader dies; its ``Message-ID`` is derived
from the sub-key, so mail clients fold it. Each mail carries
``X-Freezer-DR-Key: <key>``.

Each delivery is one SMTP session bounded as a whole by ``[email]
timeout`` (:mod:`freezer_dr.notifiers.smtp`): the engine's lease check
before ``deliver()`` covers all of it, and a mail is never committed
after that deadline. A recipient the server refuses for good (5xx) is
logged and not retried; every other SMTP or Keystone failure raises
``NotifyFailed``, naming the server, never the password.
"""
from __future__ import annotations

import email.message
import email.utils
import hashlib
import typing as t

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.notifiers import base
from freezer_dr.notifiers import directory as directory_mod
from freezer_dr.notifiers import render
from freezer_dr.notifiers.smtp import SmtpTransport

__all__ = ['EmailNotifier', 'message_id']

LOG = logging.getLogger(__name__)

MESSAGES = ('user_recovery', 'admin_recovery', 'admin_alert')
ALERT_TITLES = {
    'recovered': 'Recovery finished',
    'fence_failed': 'Fencing failed, host held',
    'storm': 'Storm guard: no recovery started',
    'blind': 'Monitor unreachable: no recovery possible',
    'held': 'Recovery held',
}


def message_id(subkey: str) -> str:
    """A Message-ID that is the same for the same sub-key on any replica."""
    digest = hashlib.sha256(subkey.encode()).hexdigest()[:32]
    return f'<{digest}@freezer-dr>'


class EmailNotifier(base.Notifier):
    """Mails affected users and admins (stevedore name ``email``)."""

    def __init__(self, transport: SmtpTransport, from_address: str,
                 admin_addresses: t.Sequence[str] = (),
                 directory: t.Any | None = None,
                 templates_dir: str | None = None,
                 subject_prefix: str = '[freezer-dr]') -> None:
        """``directory`` has ``members(project_ids)`` (see
        :class:`~freezer_dr.notifiers.directory.UserDirectory`); None
        means users are not mailed."""
        self.transport = transport
        self.from_address = from_address
        self.admin_addresses = list(admin_addresses)
        self.directory = directory
        self.subject_prefix = subject_prefix
        self.env = render.template_environment(templates_dir)
        render.check_templates(self.env, MESSAGES)

    @classmethod
    def from_config(cls, conf: t.Any,
                    connection: t.Any | None = None) -> EmailNotifier:
        """Build from the ``[email]`` group and an openstacksdk connection
        (needed to look users up when ``notify_users`` is set)."""
        opts = conf.email
        transport = SmtpTransport(
            opts.smtp_host, opts.smtp_port, opts.security, opts.username,
            opts.password, opts.timeout, opts.ca_file)
        directory = None
        if opts.notify_users:
            if connection is None:
                LOG.warning('[email] notify_users is set but there is no '
                            'cloud connection: mailing admins only')
            else:
                directory = directory_mod.UserDirectory(connection)
        if not opts.admin_addresses:
            LOG.warning('[email] admin_addresses is empty: alerts and '
                        'summaries go nowhere')
        return cls(transport, opts.from_address, opts.admin_addresses,
                   directory, opts.templates_dir, opts.subject_prefix)

    def send(self, event: base.Event, key: str,
             already: set[str] | None = None) -> None:
        """Deliver every message of ``event`` whose sub-key is not in
        ``already``; delivered sub-keys are added to it as they go."""
        done = already if already is not None else set()
        for delivery in self.deliveries(event, key):
            if delivery.subkey in done:
                continue
            delivery.deliver()
            done.add(delivery.subkey)

    def deliveries(self, event: base.Event,
                   key: str) -> list[base.Delivery]:
        """Admin messages first, then one per affected user."""
        recovery = (render.recovery_view(event.recovery)
                    if event.recovery else None)
        context = {'event': event, 'host': event.host or '-',
                   'recovery': recovery,
                   'subject_prefix': self.subject_prefix,
                   'kind_title': ALERT_TITLES.get(event.kind, event.kind)}
        admin_msg = ('admin_recovery' if event.kind == 'recovered'
                     and recovery else 'admin_alert')
        out = [self._delivery(f'{key}/admin/{address}', address, key,
                              admin_msg, context)
               for address in self.admin_addresses]
        if (event.kind == 'recovered' and recovery
                and self.directory is not None):
            out.extend(self._user_deliveries(key, recovery, context))
        return out

    def _user_deliveries(self, key: str, recovery: dict[str, t.Any],
                         context: dict[str, t.Any]
                         ) -> list[base.Delivery]:
        by_project: dict[str, list[dict[str, t.Any]]] = {}
        for inst in recovery['instances']:
            by_project.setdefault(inst['project_id'], []).append(inst)
        try:
            members = self.directory.members(sorted(by_project))
        except exceptions.NotifyFailed as e:
            # Admins still hear now; the users' turn comes on retry.
            error = e

            def fail() -> None:
                raise error
            return [base.Delivery(f'{key}/users', 'keystone', fail)]
        projects_of: dict[str, list[dict[str, t.Any]]] = {}
        users: dict[str, t.Any] = {}
        for project_id in sorted(by_project):
            project = members[project_id]
            for user in project.users:
                users[user.id] = user
                projects_of.setdefault(user.id, []).append({
                    'id': project_id, 'name': project.project_name,
                    'instances': by_project[project_id]})
        return [self._delivery(f'{key}/user/{user_id}',
                               users[user_id].email, key, 'user_recovery',
                               {**context, 'user': users[user_id],
                                'projects': projects_of[user_id]})
                for user_id in sorted(users)]

    def _delivery(self, subkey: str, recipient: str, key: str,
                  name: str, context: dict[str, t.Any]) -> base.Delivery:
        def deliver() -> None:
            # The engine's guard covers deliver() as a whole: composing
            # counts against the same deadline as the SMTP session.
            with self.transport.deadline() as deadline:
                msg = self._compose(subkey, recipient, key, name, context)
                self.transport.send(msg, recipient, deadline)
            LOG.info('mailed %s to %s (key %s)', name, recipient, key)
        return base.Delivery(subkey, recipient, deliver)

    def _compose(self, subkey: str, recipient: str, key: str, name: str,
                 context: dict[str, t.Any]) -> email.message.EmailMessage:
        rendered = render.render_message(self.env, name, context)
        msg = email.message.EmailMessage()
        msg['Subject'] = rendered.subject
        msg['From'] = self.from_address
        msg['To'] = recipient
        msg['Date'] = email.utils.formatdate(localtime=False)
        msg['Message-ID'] = message_id(subkey)
        msg['X-Freezer-DR-Key'] = key
        msg['X-Freezer-DR-Subkey'] = subkey
        msg.set_content(rendered.text)
        msg.add_alternative(rendered.html, subtype='html')
        return msg
