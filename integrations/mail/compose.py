"""Mail composition from Jinja2 templates (autoescaped HTML, strict on undefined values), no attachments; the
references and Message-IDs that make a resend recognisable.

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
from config.mail import MailSettings

PREFIX = {"terugkoppeling": "T", "correctie": "C", "aanmelding": "A", "aanvraag": "AV", "intrekking": "AI"}
SUBJECTS = {
    "terugkoppeling": "[ZSM-terugkoppeling] {ref}",
    "correctie": "[ZSM-terugkoppeling] CORRECTIE {ref}",
    "aanmelding": "[ZSM-aanmelding] {ref}",
}


def ref_for(source_event: str, vh_key: str, kind: str) -> str:
    """The mail's reference, shown in the room and the subject: the same command, house and kind give the same."""
    digest = hashlib.sha256(f"{source_event}\x00{vh_key}\x00{kind}".encode()).hexdigest()[:8].upper()
    return f"{PREFIX[kind]}-{digest}"


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


def check_templates(settings: MailSettings) -> list[str]:
    """Render every template once with sample values, so a broken template shows at check-config, not at 03:00."""
    problems = []
    templates = Templates(settings.templates)
    sample = {"persoon": "BSN 000000000", "zaak": "", "datum": "01-01-2026 00:00", "afdoening": "voorbeeld",
              "reclassering": False, "minderjarig": False, "motivering": None, "advies": "", "beperkt": False,
              "gemeente": "voorbeeld",
              "reden": "voorbeeld", "ref": "T-00000000", "vh_naam": "voorbeeld", "correctie": False,
              "vertrouwelijkheid": settings.vertrouwelijkheid_tekst}
    for name in ("terugkoppeling", "aanmelding"):
        try:
            templates.render(name, sample)
        except Exception as exc:
            where = settings.templates or "de meegeleverde set"
            problems.append(f"mail.templates: {name} in {where} is niet bruikbaar ({type(exc).__name__}: "
                            f"{str(exc)[:120]})")
    return problems
