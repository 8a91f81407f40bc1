"""Which legal regime an audit record falls under, for inzage requests (PRIVACY.md: requests about OM data go to
the OM's privacy officer, so the export must say which regime each record belongs to)."""

from __future__ import annotations

OM = "OM-gegevens (Wjsg): verzoeken via de privacyfunctionaris van het OM"
VH = "veiligheidshuisgegevens (AVG/UAVG, regionaal convenant)"
SYSTEM = "gebruik van de bot (AVG)"

_PREFIXES: tuple[tuple[str, str], ...] = (
    ("besluit", OM),
    ("terugkoppeling", OM),
    ("sepot", OM),
    ("aanmelding", OM),
    ("informeren", OM),
    ("check", VH),
    ("register", VH),
    ("instroom", VH),
    ("markering", VH),
    ("import", VH),
    ("aanvraag", VH),
    ("advies", VH),
    ("vrijgave", VH),
)


def regime_of(kind: str) -> str:
    for prefix, regime in _PREFIXES:
        if kind.startswith(prefix):
            return regime
    return SYSTEM
