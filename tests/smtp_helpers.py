"""A real SMTP server for tests: aiosmtpd on loopback with STARTTLS and a certificate made by openssl."""

from __future__ import annotations

import asyncio
import email
import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


def make_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )
    return cert, key


def mail_section(port: int, cert: Path, **extra: Any) -> dict[str, Any]:
    """The ``[mail]`` section for a test relay on loopback: STARTTLS, trusting the test certificate."""
    return {"enabled": False, "host": "127.0.0.1", "port": port, "tls": "starttls", "ca_bestand": str(cert),
            "afzender": "zsm-bot@om.example", "herroep_seconden": 60, "backoff_seconden": 1.0,
            "max_pogingen": 3, "timeout_seconden": 5.0, **extra}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    rcpt: list[str]
    message: Message


@dataclass
class Collector:
    received: list[Received] = field(default_factory=list)
    delay_s: float = 0.0
    # ``hold``: the next message is taken (in ``received``) and its 250 held back until ``released`` is set, with
    # ``holding`` set meanwhile: a mail the relay has and the bot has not yet heard about. The server runs in a
    # thread of its own, so these are thread events.
    hold: bool = False
    holding: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.received.append(Received(list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        if self.hold:
            self.hold = False
            self.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait, 120)
        return "250 OK"

    def message_ids(self) -> list[str]:
        return [str(r.message["Message-ID"]) for r in self.received]


class SmtpServer:
    def __init__(self, cert: Path, key: Path, port: int, *, starttls: bool = True, implicit: bool = False,
                 delay_s: float = 0.0) -> None:
        self.collector = Collector(delay_s=delay_s)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        self.kwargs: dict[str, Any] = {"tls_context": ctx, "require_starttls": True} if starttls else {}
        if implicit:
            self.kwargs = {"ssl_context": ctx}
        self.port = port
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        """A fresh controller each time: an aiosmtpd controller cannot be started twice."""
        self.controller = Controller(self.collector, hostname="127.0.0.1", port=self.port, **self.kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None
