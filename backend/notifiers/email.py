"""Email channel: one message over SMTP (STARTTLS or TLS, login optional) to SMTP_TO (SPEC §10)."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import certifi

from backend.email_settings import EmailSettings
from backend.notifiers.email_text import email_html, email_subject, email_text
from backend.messages import LANGUAGES, Notice
from backend.notifiers.base import DeliveryError, Notifier

log = logging.getLogger(__name__)
MAX_REPLY_CHARS = 200  # of a server's reply quoted in an error: a reason, not a dump


class EmailNotifier(Notifier):
    """Sends each notice as one plain-text + HTML message through the SMTP server of EmailSettings."""

    channel = "EMAIL"

    def __init__(self, settings: EmailSettings, timeout_seconds: float, language: str = LANGUAGES[0]):
        self.settings = settings
        self.timeout_seconds = timeout_seconds
        self.language = language  # NOTIFY_LANGUAGE (SPEC §10)
        self._context = tls_context(settings) if settings.tls or settings.starttls else None

    def __repr__(self) -> str:  # never show the password
        s = self.settings
        return f"EmailNotifier(host={s.host!r}, port={s.port}, to={s.to!r}, language={self.language!r})"

    def send(self, notice: Notice) -> str | None:
        """Send one message and return its Message-ID; raise DeliveryError with a one-line reason on failure."""
        message = self.message(notice)
        try:
            refused = self._deliver(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(*self._reason(exc)) from None
        if refused:  # some recipients took it: sending again would give them a second copy
            log.warning("email for alert %d refused by %s", notice.alert_id, ", ".join(sorted(refused)))
        return message["Message-ID"]

    def message(self, notice: Notice) -> EmailMessage:
        """The message for `notice`: subject, addresses, a fresh Message-ID, text and HTML parts."""
        message = EmailMessage()
        message["Subject"] = email_subject(notice)
        message["From"] = self.settings.sender
        message["To"] = ", ".join(self.settings.to)
        message["Date"] = formatdate(usegmt=True)
        # The sender's domain, not make_msgid's default socket.getfqdn() (a DNS look-up per message).
        domain = parseaddr(self.settings.sender)[1].rpartition("@")[2]
        message["Message-ID"] = make_msgid("outage", domain=domain)
        message.set_content(email_text(notice, self.language))
        message.add_alternative(email_html(notice, self.language), subtype="html")
        return message

    def _deliver(self, message: EmailMessage) -> dict:
        """One SMTP session within NOTIFY_TIMEOUT_SECONDS in all; the recipients the server refused, if any."""
        s, timeout = self.settings, self.timeout_seconds
        deadline = time.monotonic() + timeout
        if s.tls:
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=timeout, context=self._context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=timeout)
        try:
            if s.starttls:
                _time_left(smtp, deadline)
                smtp.starttls(context=self._context)
            if s.user:
                _time_left(smtp, deadline)
                smtp.login(s.user, s.password or "")
            _time_left(smtp, deadline)
            refused = smtp.send_message(message)
        except BaseException:
            smtp.close()
            raise
        try:  # sent: a QUIT that fails now must not make it a failed attempt (and a second copy)
            _time_left(smtp, deadline)
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()
        return refused

    def _reason(self, exc: BaseException) -> tuple[str, int | None]:
        """A one-line reason and the SMTP reply code, if any, for a failed attempt; never the password."""
        s = self.settings
        where = f"{s.host}:{s.port}"
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, reply = next(iter(exc.recipients.values()), (None, b""))
            return self._scrub(f"SMTP server refused every recipient: {_reply(code, reply)}"), code
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            return self._scrub(f"SMTP login as {s.user} refused: {_reply(exc.smtp_code, exc.smtp_error)}"), \
                exc.smtp_code
        if isinstance(exc, smtplib.SMTPResponseException):
            return self._scrub(f"SMTP server answered {_reply(exc.smtp_code, exc.smtp_error)}"), exc.smtp_code
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return self._scrub(f"SMTP server {where}: {exc}"), None
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            return f"SMTP server {where} closed the connection", None
        if isinstance(exc, ssl.SSLCertVerificationError):
            return f"TLS error with {where}: certificate verify failed: {exc.verify_message}", None
        if isinstance(exc, ssl.SSLError):
            return f"TLS error with {where}: {exc.reason or type(exc).__name__}", None
        if isinstance(exc, TimeoutError):
            return f"SMTP server {where} did not answer within {self.timeout_seconds:g}s", None
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve SMTP_HOST {s.host}: {exc.strerror}", None
        if isinstance(exc, OSError):
            return f"SMTP server {where} could not be reached: {exc.strerror or type(exc).__name__}", None
        return self._scrub(f"SMTP error: {type(exc).__name__}: {exc}"), None

    def _scrub(self, text: str) -> str:
        # A server could quote what it was sent; the password never leaves this object.
        password = self.settings.password
        return text.replace(password, "***") if password else text


def tls_context(settings: EmailSettings) -> ssl.SSLContext:
    """Verify the server against SMTP_CA_FILE, else the system's CAs, else certifi's when the system has none."""
    if settings.ca_file is not None:
        return ssl.create_default_context(cafile=str(settings.ca_file))
    paths = ssl.get_default_verify_paths()
    if paths.cafile is None and paths.capath is None:  # a Python whose OpenSSL finds no system bundle
        return ssl.create_default_context(cafile=certifi.where())
    return ssl.create_default_context()


def _time_left(smtp: smtplib.SMTP, deadline: float) -> None:
    """Give the next step only what is left of the attempt: smtplib's timeout is per socket call, not in all."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    if smtp.sock is not None:
        smtp.sock.settimeout(left)


def _reply(code: int | None, reply: bytes | str) -> str:
    """`535 5.7.8 Authentication credentials invalid`: the code and the reply's first line, clipped."""
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    first = first if len(first) <= MAX_REPLY_CHARS else first[:MAX_REPLY_CHARS - 3] + "..."
    return f"{code} {first}".strip() if code is not None else first
