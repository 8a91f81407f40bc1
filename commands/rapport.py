"""``!rapport [periode] [vh]``: the management figures of issue 7 as a short Dutch summary in the room.

A chat adapter: the figures come from ``services.rapport`` (aggregates only); counts 1..4 show as "< 5" and a
median or p90 only from at least ``MIN_OBSERVATIONS`` observations, so no line of the summary can point to a person.
"""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context
from commands.parsing import ParsedArgs
from domain.errors import UserError
from domain.identifiers import echo
from domain.rapport import PERIOD_HELP, Cijfers, Period, PeriodError, current_month, format_duur, parse_period, share
from domain.rapport import small_count as n
from domain.suggest import nearest
from services.reply import Bold, Doc, Reply

ROLES = frozenset({"ovj", "parketsecretaris", "kpc", "beheerder"})


def _share(part: int, whole: int) -> str:
    pct = share(part, whole)
    return f" ({pct})" if pct else ""


def parse_args(ctx: Context, words: tuple[str, ...]) -> tuple[Period, str | None]:
    """A word starting with a digit is the period, another word the veiligheidshuis; both optional, any order."""
    period: Period | None = None
    vh: str | None = None
    for word in words:
        if word[:1].isdigit():
            if period is not None:
                raise UserError(f"Geef één periode. {PERIOD_HELP}")
            try:
                period = parse_period(word)
            except PeriodError as exc:
                raise UserError(str(exc)) from None
        else:
            if vh is not None:
                raise UserError("Geef één veiligheidshuis. Gebruik: !rapport [periode] [veiligheidshuis]")
            vh = word.lower()
            if ctx.services.veiligheidshuizen.get(vh) is None:
                near = nearest(vh, ctx.services.veiligheidshuizen.keys())
                hint = f" Bedoelde u: {', '.join(near)}?" if near else ""
                raise UserError(f"Onbekend veiligheidshuis '{echo(word, 30)}'.{hint} Gebruik: !rapport [periode] "
                                "[veiligheidshuis], bijvoorbeeld !rapport 2026-10 utrecht")
    return period or current_month(ctx.now), vh


def summary(doc: Doc, c: Cijfers, *, national: bool) -> Doc:
    hits = c.hits_volwassen + c.hits_minderjarig
    lookups = f"Raadplegingen: {n(c.checks)}; " if national else ""
    doc.line(f"Bekende personen binnengekomen: {n(c.personen_bekend)}; van hen teruggekoppeld: "
             f"{n(c.personen_teruggekoppeld)}{_share(c.personen_teruggekoppeld, c.personen_bekend)}.")
    doc.line(lookups, f"treffers bij een veiligheidshuis: {n(hits)} (volwassen {n(c.hits_volwassen)}, "
             f"minderjarig {n(c.hits_minderjarig)}).")
    doc.line(f"Besluiten over bekende personen: {n(c.besluiten_bekend)}; terugkoppeling afgeleverd: "
             f"{n(c.terugkoppeling_afgeleverd)}{_share(c.terugkoppeling_afgeleverd, c.besluiten_bekend)}, "
             f"na mediaan {format_duur(c.terugkoppeling_mediaan_s)} (p90 {format_duur(c.terugkoppeling_p90_s)}).")
    doc.line(f"Advies gevolgd: {n(c.advies_gevolgd)}; afgeweken (met motivering): {n(c.advies_afgeweken)}; "
             f"vrijgesteld (technisch sepot, selectie minderjarige): {n(c.advies_vrijgesteld)}. "
             f"Aanmeldingen: {n(c.aanmeldingen)}.")
    answered = c.aanvragen_op_tijd + c.aanvragen_te_laat
    doc.line(f"Adviesaanvragen: {n(c.aanvragen_geopend)} geopend, {n(c.aanvragen_bevestigd)} bevestigd, "
             f"{n(c.aanvragen_op_tijd)} op tijd en {n(c.aanvragen_te_laat)} te laat beantwoord, "
             f"{n(c.aanvragen_verlopen)} verlopen; antwoord na mediaan {format_duur(c.respons_mediaan_s)} "
             f"(p90 {format_duur(c.respons_p90_s)}, {n(answered)} antwoorden).")
    if c.escalaties:
        doc.line("Escalaties: " + ", ".join(f"{step} {n(count)}" for step, count in c.escalaties) + ".")
    doc.line(f"Mail: {n(c.mail_afgeleverd)} afgeleverd, {n(c.mail_herhaald)} na herhaling, {n(c.mail_dood)} "
             "niet verzonden.")
    return doc


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    period, vh_key = parse_args(ctx, args.words)
    vhs = ctx.services.veiligheidshuizen
    rapport = await ctx.services.rapport.chat(ctx.session, ctx.caller(), period, vh_key)
    vh = vhs.get(vh_key) if vh_key else None
    doc = Doc().line(Bold(f"Rapport {period.label}"), f" — {vh.naam if vh else 'alle veiligheidshuizen'}")
    summary(doc, rapport.totaal, national=vh is None)
    doc.line("Aantallen van 1 tot 4 staan als '< 5'; duur alleen bij minstens 5 waarnemingen.")
    return doc.build()


SPEC = CommandSpec(
    name="rapport",
    summary="Managementcijfers over een periode: checks, besluiten, terugkoppeling, adviesaanvragen, mail.",
    handler=handle,
    roles=ROLES,
    args=(Arg("periode", "2026-W43, 2026-10, 2026-Q4 of 2026-10-01..2026-10-31 (standaard: deze maand)",
              optional=True),
          Arg("veiligheidshuis", "sleutel van het veiligheidshuis (standaard: alle)", optional=True)),
    description=("Alleen totalen, nooit personen: aantallen van 1 tot 4 staan als '< 5', een mediaan of p90 alleen "
                 "bij minstens 5 waarnemingen. Dezelfde cijfers: zsm-bot rapport en de webpagina /rapport."),
    examples=("!rapport", "!rapport 2026-10", "!rapport 2026-Q4 utrecht", "!rapport 2026-10-01..2026-10-15"),
    read_only=True,
)
