"""Person identifiers as typed at ZSM: BSN (9 digits, elfproef) or SKN (strafrechtketennummer).

A BSN is shown in the room only masked (last 3 digits), never in logs; the audit trail stores a keyed hash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["bsn", "skn"]

_SKN_PREFIX = re.compile(r"^skn[:\-]?", re.IGNORECASE)


class InvalidIdentifier(ValueError):
    """Carries the Dutch explanation for the user."""


def elfproef(digits: str) -> bool:
    """The BSN check: sum of digit * (9..2) minus the last digit must be divisible by 11, and not all zero."""
    if len(digits) != 9 or not digits.isdigit() or digits == "000000000":
        return False
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return total % 11 == 0


@dataclass(frozen=True)
class PersonId:
    kind: Kind
    value: str

    @property
    def masked(self) -> str:
        if self.kind == "bsn":
            return "BSN ******" + self.value[-3:]
        return "SKN " + self.value

    def __str__(self) -> str:  # never the full BSN by accident in a format string
        return self.masked


ACCEPTED_FORMS = "een BSN (9 cijfers, elfproef) of een SKN (8 cijfers, of 'skn:' gevolgd door het nummer)"


def parse_person_id(text: str, allowed: frozenset[str] = frozenset({"bsn", "skn"})) -> PersonId:
    raw = text.strip().replace(".", "").replace(" ", "")
    explicit_skn = bool(_SKN_PREFIX.match(raw))
    digits = _SKN_PREFIX.sub("", raw) if explicit_skn else raw
    if not digits.isdigit():
        raise InvalidIdentifier(f"'{_safe(text)}' is geen geldig nummer. Geef {ACCEPTED_FORMS}.")
    if explicit_skn or len(digits) == 8:
        if not 6 <= len(digits) <= 12:
            raise InvalidIdentifier(f"Een SKN heeft 6 tot 12 cijfers. Geef {ACCEPTED_FORMS}.")
        if "skn" not in allowed:
            raise InvalidIdentifier("Zoeken op SKN is in deze regio niet toegestaan; gebruik het BSN.")
        return PersonId("skn", digits)
    if len(digits) == 9:
        if not elfproef(digits):
            raise InvalidIdentifier("Dit BSN klopt niet (elfproef mislukt). Controleer de cijfers.")
        if "bsn" not in allowed:
            raise InvalidIdentifier("Zoeken op BSN is in deze regio niet toegestaan; gebruik het SKN.")
        return PersonId("bsn", digits)
    raise InvalidIdentifier(f"Een nummer van {len(digits)} cijfers wordt niet herkend. Geef {ACCEPTED_FORMS}.")


def echo(text: str, limit: int = 40) -> str:
    """What an error line may repeat of other free text (a period, a veiligheidshuis): as typed, cut to ``limit``,
    unless it holds as many digits as an identifier; then masked as a refused identifier is."""
    cut = text.strip()[:limit]
    return cut if sum(c.isdigit() for c in cut) < 8 else _safe(cut)


def _safe(text: str) -> str:
    """Echo at most a short fragment of what was typed, with every digit but the last three masked: the room sees
    no more of a mistyped number than of a valid one, however the digits were split up."""
    cut = text.strip()[:20]
    keep_from = sum(c.isdigit() for c in cut) - 3
    seen = 0
    out = []
    for c in cut:
        if c.isdigit():
            seen += 1
            c = c if seen > keep_from else "*"
        out.append(c)
    return "".join(out)
