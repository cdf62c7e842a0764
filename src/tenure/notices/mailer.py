"""SMTP: where outbound mail goes, the message a notice becomes, and what an SMTP error means for a retry.

`TENURE_SMTP_URL` is `smtp://user:password@host:port` (plain, port 25 by default),
`smtp+starttls://…` (STARTTLS, port 587) or `smtps://…` (TLS from the start, port 465); user and password
are optional and percent-decoded. `TENURE_MAIL_FROM` is the sender (`it@example.com` or
`Example IT <it@example.com>`; a bare address gets the MSP's name). Without both, mail waits in the outbox.
`TENURE_STAFF_EMAIL` is where notices for staff go (default: the sender's address).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, getaddresses, parseaddr
from typing import Any
from urllib.parse import unquote, urlsplit

from tenure.errors import TenureError
from tenure.text import header_safe

TIMEOUT_SECONDS = 30.0
_SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


@dataclass(frozen=True)
class MailConfig:
    scheme: str
    host: str
    port: int
    user: str | None
    password: str | None = field(repr=False)
    mail_from: str  # as configured: an address, or "Name <address>"

    @property
    def from_address(self) -> str:
        return parseaddr(self.mail_from)[1]

    @property
    def domain(self) -> str:
        return self.from_address.rpartition("@")[2] or "tenure.invalid"

    def from_header(self, msp_name: str | None) -> str:
        name, address = parseaddr(self.mail_from)
        return formataddr((name or msp_name or "", address))

    def describe(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def parse_smtp_url(url: str, mail_from: str) -> MailConfig:
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise TenureError(f"TENURE_SMTP_URL: scheme {parts.scheme!r} is not one of {', '.join(_SCHEMES)}")
    if not parts.hostname:
        raise TenureError("TENURE_SMTP_URL: no host (smtp://user:password@host:port)")
    try:
        port = parts.port or _SCHEMES[scheme]
    except ValueError:
        raise TenureError("TENURE_SMTP_URL: the port is not a number") from None
    if not parseaddr(mail_from)[1] or "@" not in parseaddr(mail_from)[1]:
        raise TenureError(f"TENURE_MAIL_FROM: {mail_from!r} is not an e-mail address")
    return MailConfig(
        scheme=scheme,
        host=parts.hostname,
        port=port,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        mail_from=mail_from.strip(),
    )


def mail_config(env: Mapping[str, str] | None = None) -> MailConfig | None:
    """The SMTP settings from the environment, None when mail is not configured (it waits in the outbox)."""
    env = os.environ if env is None else env
    url, sender = env.get("TENURE_SMTP_URL", "").strip(), env.get("TENURE_MAIL_FROM", "").strip()
    if not url or not sender:
        return None
    return parse_smtp_url(url, sender)


def why_waiting(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    missing = [name for name in ("TENURE_SMTP_URL", "TENURE_MAIL_FROM") if not env.get(name, "").strip()]
    if not missing:
        return None
    return f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: mail waits in the outbox"


def staff_addresses(env: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if env is None else env
    configured = env.get("TENURE_STAFF_EMAIL", "").strip()
    if configured:
        return [address for _, address in getaddresses([configured]) if address]
    sender = parseaddr(env.get("TENURE_MAIL_FROM", ""))[1]
    return [sender] if sender else []


@dataclass(frozen=True)
class Outgoing:
    notice_id: int
    kind: str
    message_id: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    text: str
    html: str | None
    msp_name: str | None
    # files the notice carries, rendered when sent (notices.attachments): [{"kind": "invoice_pdf", ...}]
    attach: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # "application/pdf"
    content: bytes = field(repr=False)


def build_message(
    item: Outgoing, config: MailConfig, now: datetime, files: tuple[Attachment, ...] = ()
) -> EmailMessage:
    """The message; a CR or LF stored in a name, an address or a subject before they were refused becomes a
    space here, so it can neither add a header nor stop the notice from going out."""
    message = EmailMessage()
    message["Message-ID"] = item.message_id
    message["Date"] = format_datetime(now)
    message["From"] = config.from_header(header_safe(item.msp_name) if item.msp_name else item.msp_name)
    message["To"] = header_safe(", ".join(item.to))
    if item.cc:
        message["Cc"] = header_safe(", ".join(item.cc))
    message["Subject"] = header_safe(item.subject)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Tenure-Notice"] = f"{item.notice_id} {item.kind}"
    message.set_content(item.text)
    if item.html:
        message.add_alternative(item.html, subtype="html")
    for file in files:
        maintype, _, subtype = file.content_type.partition("/")
        message.add_attachment(file.content, maintype=maintype, subtype=subtype, filename=header_safe(file.filename))
    return message


class SendFailed(Exception):
    """An attempt that did not deliver. `permanent`: retrying will not help (the server said 5xx)."""

    def __init__(self, message: str, permanent: bool = False, connection: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.connection = connection  # the server could not be reached or dropped us: drop the connection


class Mailer:
    """One SMTP connection, opened on first use and reused for a batch."""

    def __init__(self, config: MailConfig):
        self.config = config
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        try:
            if c.scheme == "smtps":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    c.host, c.port, timeout=TIMEOUT_SECONDS, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(c.host, c.port, timeout=TIMEOUT_SECONDS)
            smtp.ehlo()
            if c.scheme == "smtp+starttls":
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if c.user:
                smtp.login(c.user, c.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise SendFailed(f"{c.describe()} refused the login: {_reply(exc)}", connection=True) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise SendFailed(f"cannot reach {c.describe()}: {_describe(exc)}", connection=True) from None
        return smtp

    def send(self, message: EmailMessage, recipients: list[str]) -> dict[str, str]:
        """Deliver to the server; returns the recipients it refused (the others were accepted)."""
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            refused = self._smtp.send_message(message, from_addr=self.config.from_address, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(f"{r}: {code} {_text(m)}" for r, (code, m) in exc.recipients.items())
            raise SendFailed(f"every recipient was refused: {detail}", permanent=all(c >= 500 for c in codes)) from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raise SendFailed(f"the server refused the message: {_reply(exc)}", permanent=True) from None
            raise SendFailed(f"the server deferred the message: {_reply(exc)}") from None
        except (OSError, smtplib.SMTPException) as exc:
            self.close()
            raise SendFailed(f"lost {self.config.describe()}: {_describe(exc)}", connection=True) from None
        return {r: f"{code} {_text(m)}" for r, (code, m) in refused.items()}

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (OSError, smtplib.SMTPException):
            smtp.close()


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}"


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
