"""SMTP delivery of one message, the whole session within one deadline.

An SMTP delivery is many round trips (connect, TLS, EHLO, STARTTLS, AUTH,
MAIL, RCPT, DATA, the message, QUIT) and ``smtplib``'s timeout bounds
each socket operation only. Here one :class:`~freezer_dr.deadline.Deadline`
of ``timeout`` seconds bounds them all: every operation gets at most the
time left, the socket is shut down at the deadline (a server that answers
slowly or dribbles cannot hold the session), and the message is committed
(the final ``.`` of DATA) only while the deadline has not passed. So a
delivery the engine started with ``guard(need=timeout)`` is over by then,
the mail either committed before the deadline or never.
"""
from __future__ import annotations

import contextlib
import email.message
import smtplib
import socket
import ssl

from oslo_log import log as logging

from freezer_dr import exceptions
from freezer_dr.deadline import Deadline
from freezer_dr.deadline import DeadlineExceeded

LOG = logging.getLogger(__name__)

CRLF = b'\r\n'


class BoundedSMTP(smtplib.SMTP):
    """``smtplib.SMTP`` whose session ends by ``deadline``.

    ``implicit_tls`` (an SSL context) makes it SMTPS: TLS from the first
    byte, the handshake under the deadline too. ``committing`` is set
    once the end of DATA has been sent.
    """

    def __init__(self, host: str, port: int, deadline: Deadline,
                 timeout: float,
                 implicit_tls: ssl.SSLContext | None = None) -> None:
        self.deadline = deadline
        self.implicit_tls = implicit_tls
        self.committing = False
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int,
                    timeout: float) -> socket.socket:
        sock = socket.create_connection(
            (host, port), self.deadline.bound(timeout, 'SMTP connect'),
            self.source_address)
        try:
            self.deadline.watch(sock)    # before TLS: the handshake too
            if self.implicit_tls is not None:
                return self.implicit_tls.wrap_socket(sock,
                                                     server_hostname=host)
        except BaseException:
            sock.close()
            raise
        return sock

    def _bound_socket(self, what: str) -> None:
        if self.sock is not None:
            self.sock.settimeout(self.deadline.bound(self.timeout, what))

    def send(self, s: str | bytes) -> None:
        self._bound_socket('SMTP send')
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        self._bound_socket('SMTP reply')
        return super().getreply()

    def data(self, msg: str | bytes) -> tuple[int, bytes]:
        """DATA, the message, then its end only if the deadline allows."""
        self.putcmd('data')
        code, reply = self.getreply()
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        if isinstance(msg, str):
            msg = smtplib._fix_eols(msg).encode('ascii')
        body = smtplib._quote_periods(msg)
        if not body.endswith(CRLF):
            body += CRLF
        self.send(body)
        # The final dot commits the mail: never past the deadline.
        self.deadline.check('SMTP end of DATA')
        self.committing = True
        self.send(b'.' + CRLF)
        return self.getreply()


class SmtpTransport:
    """Sends one message per connection; SMTP errors -> NotifyFailed."""

    def __init__(self, host: str, port: int, security: str = 'none',
                 username: str | None = None, password: str | None = None,
                 timeout: float = 10.0, ca_file: str | None = None) -> None:
        """``timeout`` bounds one whole delivery (see module)."""
        if security not in ('none', 'starttls', 'ssl'):
            raise exceptions.ConfigError(
                f'[email] security: unknown mode {security!r}')
        if bool(username) != bool(password):
            raise exceptions.ConfigError(
                '[email] username and password go together')
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ca_file = ca_file

    @property
    def server(self) -> str:
        return f'{self.host}:{self.port}'

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    def _connect(self, deadline: Deadline) -> BoundedSMTP:
        client = BoundedSMTP(
            self.host, self.port, deadline, self.timeout,
            self._tls() if self.security == 'ssl' else None)
        try:
            if self.security == 'starttls':
                client.starttls(context=self._tls())
            if self.username:
                client.login(self.username, self._password or '')
        except BaseException:
            client.close()
            raise
        return client

    def deadline(self) -> Deadline:
        """A deadline of ``timeout`` seconds for one delivery."""
        return Deadline(self.timeout)

    def send(self, msg: email.message.EmailMessage, recipient: str,
             deadline: Deadline | None = None) -> None:
        """Deliver ``msg`` to ``recipient`` (envelope and header), the
        whole session by ``deadline`` (default: ``timeout`` from now)."""
        client: BoundedSMTP | None = None
        with contextlib.ExitStack() as stack:
            if deadline is None:
                deadline = stack.enter_context(self.deadline())
            try:
                client = self._connect(deadline)
                try:
                    client.send_message(msg, to_addrs=[recipient])
                finally:
                    _quit(client)
            except (DeadlineExceeded, smtplib.SMTPException,
                    OSError) as error:
                if deadline.expired or isinstance(error, DeadlineExceeded):
                    committed = client is not None and client.committing
                    raise exceptions.NotifyFailed(
                        f'SMTP server {self.server}: no complete delivery '
                        f'within {deadline.seconds:g} s: ' + (
                            'message sent, its acceptance unknown'
                            if committed else 'message not committed'),
                    ) from error
                self._refused(error, recipient)

    def _refused(self, error: BaseException, recipient: str) -> None:
        """Raise NotifyFailed for ``error``; return if the recipient is
        refused for good (logged: retrying cannot help)."""
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            code, reply = error.recipients.get(recipient, (0, b''))
            if 500 <= code < 600:
                LOG.error('SMTP server %s refused %s for good: %s %s; '
                          'not retrying', self.server, recipient, code,
                          _text(reply))
                return
            raise exceptions.NotifyFailed(
                f'SMTP server {self.server} refused {recipient} for now: '
                f'{code} {_text(reply)}')
        if isinstance(error, smtplib.SMTPAuthenticationError):
            raise exceptions.NotifyFailed(
                f'SMTP server {self.server} refused AUTH for user '
                f'{self.username}: {error.smtp_code} '
                f'{_text(error.smtp_error)}')
        if isinstance(error, smtplib.SMTPResponseException):
            raise exceptions.NotifyFailed(
                f'SMTP server {self.server} answered {error.smtp_code} '
                f'{_text(error.smtp_error)}')
        if isinstance(error, smtplib.SMTPException):
            raise exceptions.NotifyFailed(
                f'SMTP server {self.server}: {type(error).__name__}: '
                f'{error}')
        if isinstance(error, ssl.SSLError):
            raise exceptions.NotifyFailed(
                f'TLS with SMTP server {self.server} failed: '
                f'{error.reason or error}')
        raise exceptions.NotifyFailed(
            f'SMTP server {self.server} unreachable: '
            f'{getattr(error, "strerror", None) or type(error).__name__}')


def _quit(client: smtplib.SMTP) -> None:
    """QUIT politely; the mail is already committed or abandoned."""
    try:
        client.quit()
    except (smtplib.SMTPException, OSError, DeadlineExceeded):
        client.close()


def _text(reply: bytes | str) -> str:
    return reply.decode(errors='replace') if isinstance(
        reply, bytes) else str(reply)
