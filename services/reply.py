"""Room messages are composed once, as structure, and rendered to plain text and to HTML.

The one message document of the bot: chat commands render their replies with it, and so do the use cases that
speak in a room by themselves (the advice-request engine's pings and reminders, mail notices), so it sits in the
services layer where both can reach it.

Everything a user or a registry supplied is escaped on the HTML side by construction: a command never
writes markup by hand, so nothing typed into the room can come back out as markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bold:
    text: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Italic:
    text: str


Part = str | Bold | Code | Italic


def _plain(part: Part) -> str:
    if isinstance(part, Bold):
        return part.text
    if isinstance(part, Code):
        return part.text
    if isinstance(part, Italic):
        return part.text
    return part


def _html(part: Part) -> str:
    if isinstance(part, Bold):
        return f"<strong>{html.escape(part.text)}</strong>"
    if isinstance(part, Code):
        return f"<code>{html.escape(part.text)}</code>"
    if isinstance(part, Italic):
        return f"<em>{html.escape(part.text)}</em>"
    return html.escape(part)


@dataclass(frozen=True)
class Reply:
    """What the bot says. ``case_data`` marks replies about a person: they are redacted when retention ends."""

    text: str
    html: str
    case_data: bool = False


@dataclass
class Doc:
    _plain: list[str] = field(default_factory=list)
    _html: list[str] = field(default_factory=list)

    def line(self, *parts: Part) -> Doc:
        self._plain.append("".join(_plain(p) for p in parts))
        self._html.append("<p>" + "".join(_html(p) for p in parts) + "</p>")
        return self

    def heading(self, text: str) -> Doc:
        self._plain.append(text)
        self._html.append(f"<p><strong>{html.escape(text)}</strong></p>")
        return self

    def bullets(self, items: Sequence[Sequence[Part]]) -> Doc:
        if not items:
            return self
        for parts in items:
            self._plain.append("• " + "".join(_plain(p) for p in parts))
        self._html.append(
            "<ul>" + "".join("<li>" + "".join(_html(p) for p in parts) + "</li>" for parts in items) + "</ul>"
        )
        return self

    def build(self, *, case_data: bool = False) -> Reply:
        return Reply(text="\n".join(self._plain), html="".join(self._html), case_data=case_data)


def text(message: str, *, case_data: bool = False) -> Reply:
    """A one-line reply."""
    return Doc().line(message).build(case_data=case_data)
