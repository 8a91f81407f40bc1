"""Nearest-name suggestions for anything typed wrong: commands, afdoening codes, gemeenten."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(word: str, candidates: Iterable[str], *, limit: int = 3, cutoff: float = 0.5) -> list[str]:
    """Closest candidates first; prefix matches count even when short ('bes' -> 'besluit')."""
    pool = list(dict.fromkeys(candidates))
    lowered = word.lower()
    prefix = [c for c in pool if c.lower().startswith(lowered)] if lowered else []
    fuzzy = difflib.get_close_matches(lowered, [c.lower() for c in pool], n=limit, cutoff=cutoff)
    by_lower = {c.lower(): c for c in pool}
    out: list[str] = []
    for c in [*prefix, *(by_lower[f] for f in fuzzy)]:
        if c not in out:
            out.append(c)
    return out[:limit]
