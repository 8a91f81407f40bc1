"""Mail composition from Jinja2 templates (autoescaped HTML, strict on undefined values), no attachments.

Headers are built only from configuration and generated references; free text typed in the room goes
into the body alone, so nothing typed can become a header.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import jinja2

from config import reference

SUBJECTS = {
    "terugkoppeling": "[ZSM-terugkoppeling] {ref}",
    "correctie": "[ZSM-terugkoppeling] CORRECTIE {ref}",
    "aanmelding": "[ZSM-aanmelding] {ref}",
}


def subject_for(kind: str, ref: str) -> str:
    return SUBJECTS[kind].format(ref=ref)


def message_id_for(key: str, domain: str) -> str:
    """Deterministic: the same outbox row always gets the same Message-ID, so a resend is recognisable."""
    return f"<zsm-{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


class Templates:
    def __init__(self, directory: Path | None) -> None:
        """``directory`` None: the templates packaged in ``config`` (found wherever the wheel is installed)."""
        loader: jinja2.BaseLoader = (jinja2.FileSystemLoader(directory) if directory is not None
                                     else jinja2.PackageLoader(reference.PACKAGE, reference.TEMPLATES))
        self._text = jinja2.Environment(loader=loader, autoescape=False,  # noqa: S701  (plain-text part, never HTML)
                                        undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        self._html = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined)

    def render(self, name: str, values: dict[str, Any]) -> tuple[str, str]:
        return (self._text.get_template(f"{name}.txt.j2").render(**values),
                self._html.get_template(f"{name}.html.j2").render(**values))


def build_message(*, sender: str, recipient: str, subject: str, message_id: str, text: str, html: str,
                  date: datetime) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg["Date"] = format_datetime(date)
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(text)
    if html:  # plain-text mails (an advice request) have no HTML part, rather than an empty one
        msg.add_alternative(html, subtype="html")
    return msg
