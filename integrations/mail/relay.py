"""The SMTP relay behind a small interface: open a TLS-protected, logged-in connection and hand it messages.

Only this module knows aiosmtplib. It never falls back to plaintext (``tls = "geen"`` is for loopback tests
only, checked in ``config.mail``), and it turns every SMTP failure into a ``Delivery`` whose Dutch
reason the outbox stores and shows: the outbox decides what a failure means for the mail.
"""

from __future__ import annotations

import contextlib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal, Protocol

import aiosmtplib

from config.mail import MailSettings


class TlsRefused(Exception):
    """The server offered no (working) TLS; never fall back to plaintext."""


class RelayUnreachable(Exception):
    """No connection (refused, timed out, login failed); the message is the Dutch reason."""


@dataclass(frozen=True)
class Delivery:
    """``ok``: accepted; ``failed``: this message refused, the connection still usable; ``broken``: the connection
    is gone (or the relay asks to come back later), stop sending over it."""

    outcome: Literal["ok", "failed", "broken"]
    reason: str = ""


class RelayConnection(Protocol):
    async def send(self, msg: EmailMessage, *, sender: str, recipient: str) -> Delivery: ...

    async def close(self) -> None: ...


class Relay(Protocol):
    async def open(self) -> RelayConnection:
        """A usable connection; raises ``TlsRefused`` or ``RelayUnreachable``."""
        ...


def tls_context(settings: MailSettings) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(settings.ca_file) if settings.ca_file else None)
    ctx.check_hostname = True
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


async def connect(settings: MailSettings) -> aiosmtplib.SMTP:
    """An open, TLS-protected (unless explicitly allowed plaintext on loopback) and logged-in connection."""
    implicit = settings.tls == "implicit"
    plain = settings.tls == "geen"
    client = aiosmtplib.SMTP(
        hostname=settings.host, port=settings.port, timeout=settings.timeout_seconden,
        use_tls=implicit, start_tls=False, tls_context=None if plain else tls_context(settings),
        validate_certs=not plain,
    )
    await client.connect()
    await client.ehlo()
    if settings.tls == "starttls":
        if not client.supports_extension("starttls"):
            with contextlib.suppress(Exception):
                await client.quit()
            raise TlsRefused("server biedt geen STARTTLS")
        try:
            await client.starttls()
        except (aiosmtplib.SMTPException, ssl.SSLError) as exc:
            client.close()
            raise TlsRefused(f"STARTTLS mislukt ({type(exc).__name__})") from None
    if settings.username and settings.password:
        await client.login(settings.username, settings.password)
    return client


class SmtpConnection:
    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client

    async def send(self, msg: EmailMessage, *, sender: str, recipient: str) -> Delivery:
        try:
            await self.client.send_message(msg, sender=sender, recipients=[recipient])
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return Delivery("failed", f"ontvanger geweigerd ({type(exc).__name__})")
        except aiosmtplib.SMTPResponseException as exc:
            return Delivery("broken" if exc.code == 421 else "failed", f"relay weigerde ({exc.code})")
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return Delivery("broken", f"verbinding verbroken ({type(exc).__name__})")
        return Delivery("ok")

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.quit()


class SmtpRelay:
    """The configured relay (``[mail]``: host, port, TLS mode, CA, login, timeout)."""

    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    async def open(self) -> SmtpConnection:
        try:
            return SmtpConnection(await connect(self.settings))
        except TlsRefused:
            raise
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise RelayUnreachable(f"relay niet bereikbaar ({type(exc).__name__})") from None
