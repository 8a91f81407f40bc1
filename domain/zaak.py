"""The one rule for a case reference (``zaak: <parketnummer>``), the same for every command.

A case reference names the purpose of a lookup in the audit trail and keys a decision, so it is never cut: a
reference that does not fit is refused, and the officer types it again, rather than two cases sharing a prefix.
"""

from __future__ import annotations

from domain.errors import UserError

MAX_ZAAK_CHARS = 64


def parse_zaak(typed: str | None) -> str | None:
    """The reference as typed, trimmed; None when none was given. Too long: a Dutch refusal, nothing recorded."""
    zaak = (typed or "").strip()
    if not zaak:
        return None
    if len(zaak) > MAX_ZAAK_CHARS:
        raise UserError(f"Het zaaknummer is te lang (maximaal {MAX_ZAAK_CHARS} tekens).")
    return zaak
