"""An SMTP sink on loopback that writes every message to a maildir.

Used by the simulator and the tests: aiosmtpd serves plain SMTP,
STARTTLS (optionally with AUTH required) or SMTPS with a self-signed
certificate made at start. Each stored message keeps aiosmtpd's
``X-MailFrom`` / ``X-RcptTo`` headers, so the envelope can be checked.
Faults (:meth:`SmtpSink.set_fault`): ``slow`` answers MAIL, RCPT and DATA
late, ``reject`` answers every MAIL with a 451, ``refuse`` closes the port.
"""
from __future__ import annotations

import asyncio
import dataclasses
import email.message
import logging as std_logging
import mailbox
import os
import socket
import ssl
import typing as t
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult
from aiosmtpd.smtp import LoginPassword

from freezer_dr.simulator.certs import make_self_signed_cert

SECURITY_MODES = ('none', 'starttls', 'ssl')
FAULT_MODES = ('none', 'slow', 'reject', 'refuse')
REJECT_REPLY = '451 4.3.0 Injected fault: try again later'

# aiosmtpd logs every session at INFO from its own thread ('mail.log');
# a sink only needs its warnings.
std_logging.getLogger('mail.log').setLevel(std_logging.WARNING)


def free_tcp_port(host: str = '127.0.0.1') -> int:
    """A TCP port that was free a moment ago (aiosmtpd cannot bind 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class _Credentials:
    """aiosmtpd authenticator accepting one user name and password."""

    def __init__(self, username: str, password: str) -> None:
        self._username = username.encode()
        self._password = password.encode()

    def __call__(self, server, session, envelope, mechanism,
                 auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login == self._username
              and auth_data.password == self._password)
        return AuthResult(success=ok, handled=False)


@dataclasses.dataclass
class SmtpFault:
    """An injected fault: ``mode`` one of FAULT_MODES, ``delay`` seconds
    before each MAIL, RCPT and DATA reply in ``slow`` mode."""
    mode: str = 'none'
    delay: float = 0.0


class _Maildir(Mailbox):
    """aiosmtpd's maildir handler, refusing listed recipients."""

    def __init__(self, maildir: str, refuse: dict[str, str],
                 fault: SmtpFault) -> None:
        super().__init__(maildir)
        self.refuse = refuse
        self.fault = fault

    async def _lag(self) -> None:
        if self.fault.mode == 'slow' and self.fault.delay > 0:
            await asyncio.sleep(self.fault.delay)

    async def handle_MAIL(self, server, session, envelope, address,
                          mail_options) -> str:
        await self._lag()
        if self.fault.mode == 'reject':
            return REJECT_REPLY
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope) -> str:
        await self._lag()
        return await super().handle_DATA(server, session, envelope)

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options) -> str:
        await self._lag()
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return '250 OK'


class SmtpSink:
    """A running SMTP server on loopback that stores mail in a maildir.

    ``security`` is ``none``, ``starttls`` or ``ssl``; with
    ``credentials=(user, password)`` AUTH is required (after STARTTLS in
    ``starttls`` mode). ``cert_dir`` holds the generated certificate
    (defaults to the maildir's parent); ``ca_file`` is its path.
    ``refuse`` maps a recipient address (lower case) to the reply its
    RCPT gets, e.g. ``'451 4.3.0 try later'``; change it at any time.
    """

    def __init__(self, maildir: str, security: str = 'none',
                 credentials: tuple[str, str] | None = None,
                 host: str = '127.0.0.1', port: int = 0,
                 cert_dir: str | None = None) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(f'security must be one of {SECURITY_MODES}')
        self.maildir = maildir
        self.security = security
        self.credentials = credentials
        self.host = host
        self.port = port or free_tcp_port(host)
        self.ca_file: str | None = None
        self.refuse: dict[str, str] = {}
        self.fault = SmtpFault()
        self._kwargs: dict[str, t.Any] = {}
        self._cert_dir = cert_dir or os.path.dirname(
            os.path.abspath(maildir))
        self._controller: Controller | None = None

    def _tls_context(self) -> ssl.SSLContext:
        cert, key = make_self_signed_cert(self._cert_dir, self.host)
        self.ca_file = cert
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        return ctx

    def start(self) -> SmtpSink:
        """Start serving; returns self once the port accepts connections."""
        os.makedirs(os.path.dirname(os.path.abspath(self.maildir)),
                    exist_ok=True)
        mailbox.Maildir(self.maildir, create=True)
        kwargs: dict[str, t.Any] = {}
        if self.credentials:
            kwargs['authenticator'] = _Credentials(*self.credentials)
            kwargs['auth_required'] = True
        if self.security == 'starttls':
            kwargs['tls_context'] = self._tls_context()
            kwargs['require_starttls'] = True
        elif self.security == 'ssl':
            # The whole session is TLS; aiosmtpd only knows STARTTLS.
            kwargs['ssl_context'] = self._tls_context()
            kwargs['auth_require_tls'] = False
            warnings.filterwarnings(
                'ignore', message='Requiring AUTH while not requiring TLS',
                category=UserWarning)
        elif self.credentials:
            kwargs['auth_require_tls'] = False
        self._kwargs = kwargs
        self._serve()
        return self

    def _serve(self) -> None:
        self._controller = Controller(
            _Maildir(self.maildir, self.refuse, self.fault),
            hostname=self.host, port=self.port, **self._kwargs)
        self._controller.start()

    def set_fault(self, mode: str, delay: float = 0.0) -> SmtpFault:
        """Inject a fault (``none`` heals); ``refuse`` stops listening
        until another mode is set, on the same port."""
        if mode not in FAULT_MODES:
            raise ValueError(f'SMTP fault mode must be one of '
                             f'{", ".join(FAULT_MODES)}, not {mode!r}')
        if delay < 0:
            raise ValueError('SMTP fault delay must not be negative')
        was = self.fault.mode
        self.fault.mode, self.fault.delay = mode, float(delay)
        if mode == 'refuse' and was != 'refuse':
            self.stop()
        elif mode != 'refuse' and was == 'refuse':
            self._serve()
        return self.fault

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def messages(self) -> list[email.message.Message]:
        """Every message stored so far, oldest first."""
        box = mailbox.Maildir(self.maildir, create=True)
        msgs = [box.get_message(k) for k in box.keys()]
        return sorted(msgs, key=lambda m: m.get_date())

    def clear(self) -> None:
        """Delete every stored message."""
        mailbox.Maildir(self.maildir, create=True).clear()
