"""A real SMTP server on 127.0.0.1 (aiosmtpd in a thread) that keeps what it receives, with STARTTLS and AUTH."""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.support.procs import free_port


class _Keeper:
    """aiosmtpd handler: answers DATA with each reply in `replies` in turn (then 250), keeping accepted messages."""

    def __init__(self):
        self.received: list[tuple[str, list[str], EmailMessage]] = []
        self.replies: list[str] = []  # tests queue e.g. "451 4.3.0 try again later"
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.replies:
                return self.replies.pop(0)
            message = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


class SmtpServer:
    """aiosmtpd's Controller on a free port; `tls` offers STARTTLS, `implicit_tls` speaks TLS from the first byte,
    `user`/`password` require AUTH over TLS."""

    def __init__(self, tls: ssl.SSLContext | None = None, user: str | None = None, password: str | None = None,
                 implicit_tls: ssl.SSLContext | None = None):
        self.keeper = _Keeper()
        self.port = free_port()
        self.logins: list[tuple[str, bool]] = []  # (user, accepted) per AUTH attempt
        auth = {}
        if user is not None:
            auth = {"authenticator": self._authenticator(user, password), "auth_required": True,
                    "auth_require_tls": True}
        self.controller = Controller(self.keeper, hostname="127.0.0.1", port=self.port, tls_context=tls,
                                     require_starttls=tls is not None, ssl_context=implicit_tls, ready_timeout=10,
                                     **auth)

    def _authenticator(self, user: str, password: str | None):
        def check(server, session, envelope, mechanism, auth_data):
            ok = isinstance(auth_data, LoginPassword) and auth_data == (user.encode(), (password or "").encode())
            self.logins.append((auth_data.login.decode() if isinstance(auth_data, LoginPassword) else "", ok))
            return AuthResult(success=ok, handled=False)  # aiosmtpd then answers 535 itself
        return check

    def start(self) -> "SmtpServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def received(self) -> list[tuple[str, list[str], EmailMessage]]:
        """(envelope sender, envelope recipients, parsed message) of every message accepted so far."""
        with self.keeper.lock:
            return list(self.keeper.received)
