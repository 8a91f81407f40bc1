"""Argument splitting shared by every command: positional words, then optional ``sleutel: tekst`` parts.

Officers type fast and in a hurry; the syntax forgives case and extra spaces, and a named part
(``zaak:``, ``motivering:``, ``vraag:``, ``vh:``) runs until the next named part or the end of the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ParsedArgs:
    words: tuple[str, ...]
    named: dict[str, str] = field(default_factory=dict)
    raw: str = ""


def split_command(body: str) -> tuple[str, str]:
    """'!Check 123 zaak: x' -> ('check', '123 zaak: x'). Empty name when the body is just '!'."""
    stripped = body.strip()
    if not stripped.startswith("!"):
        return "", stripped
    head, _, rest = stripped[1:].partition(" ")
    head, _, rest2 = head.partition("\n")
    rest = (rest2 + " " + rest).strip() if rest2 else rest.strip()
    return head.lower(), rest


def parse_args(text: str, keywords: frozenset[str]) -> ParsedArgs:
    if not keywords:
        return ParsedArgs(tuple(text.split()), {}, text)
    pattern = re.compile(r"(?:(?<=\s)|^)(" + "|".join(re.escape(k) for k in sorted(keywords)) + r"):", re.IGNORECASE)
    matches = list(pattern.finditer(text))
    head = text[: matches[0].start()] if matches else text
    named: dict[str, str] = {}
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        key = m.group(1).lower()
        value = " ".join(text[m.end() : end].split())
        named[key] = (named[key] + " " + value).strip() if key in named else value
    return ParsedArgs(tuple(head.split()), named, text)
