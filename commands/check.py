"""``!check <id> [zaak: <ref>]``: is this person known at any veiligheidshuis, and what does it advise.

The lookup is national (one query over every veiligheidshuis). The reply is composed in ``commands.vh_view``;
this module parses, enforces the role rule and the configured identifier types, asks the registry and writes
the audit record (who, role, when, which person as keyed hash, hit or not, which fields, the case reference).
"""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context, Named, OutgoingNote
from commands.parsing import ParsedArgs
from commands.reply import Doc, Reply, text
from commands.vh_view import compose_check
from commands.vrijgave import zicht_for
from config.check import CheckSettings
from domain.advies import Markering, is_minor
from domain.clock import local
from domain.errors import UserError
from domain.identifiers import InvalidIdentifier, PersonId, parse_person_id
from domain.matrix_ids import direct_target
from domain.roles import VH_INFO_ROLES, labels
from integrations.registry.base import RegistryUnavailable
from storage.statistiek_models import CHECK, HIT, Feit, record_facts

MAX_ZAAK_CHARS = 64


def require_vh_role(ctx: Context, command: str) -> None:
    """PROCESS.md: the police role does not unlock veiligheidshuis information, whatever the permission matrix."""
    if ctx.role not in VH_INFO_ROLES:
        raise UserError(f"Uw rol ({ctx.role}) geeft geen toegang tot informatie van veiligheidshuizen; "
                        f"!{command} is voor {labels(VH_INFO_ROLES)}.")


def parse_id(word: str, cfg: CheckSettings) -> PersonId:
    try:
        return parse_person_id(word, cfg.identificatie)
    except InvalidIdentifier as exc:
        raise UserError(f"{exc} Gebruik: !check <bsn-of-skn> [zaak: <parketnummer>].") from None


def parse_zaak(args: ParsedArgs, cfg: CheckSettings) -> str | None:
    zaak = args.named.get("zaak") or None
    if zaak is None and cfg.zaak_verplicht:
        raise UserError("Geef het zaaknummer mee als doel van de raadpleging: "
                        "!check <bsn-of-skn> zaak: <parketnummer>.")
    if zaak is not None and len(zaak) > MAX_ZAAK_CHARS:
        raise UserError(f"Het zaaknummer is te lang (maximaal {MAX_ZAAK_CHARS} tekens).")
    return zaak


def lookup_facts(markeringen: list[Markering], ctx: Context) -> list[Feit]:
    """The figures of one lookup: one check, and one hit per veiligheidshuis that knows the person (a minor when
    any of that house's markings says so). Written beside the lookup's audit record, in the same transaction."""
    today = local(ctx.now).date()
    minor: dict[str, bool] = {}
    for m in markeringen:
        minor[m.veiligheidshuis] = minor.get(m.veiligheidshuis, False) or is_minor(m.geboortedatum, today)
    return [Feit(CHECK, ctx.now), *(Feit(HIT, ctx.now, vh, minderjarig=minor[vh]) for vh in sorted(minor))]


def unavailable_reply(system: str) -> Reply:
    return text(f"Het register ({system}) is nu niet bereikbaar; er is niets gevonden of aangenomen. "
                "Probeer het over enkele minuten opnieuw of bel de bereikbaarheidsdienst van het veiligheidshuis.")


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    require_vh_role(ctx, "check")
    cfg = ctx.services.settings.check
    person = parse_id(args.words[0], cfg)
    zaak = parse_zaak(args, cfg)
    registry = ctx.services.registry
    try:
        markeringen = await registry.lookup(person, session=ctx.session)
    except RegistryUnavailable:
        await ctx.audit("register.raadpleging", person=person.value, soort=person.kind, zaak=zaak,
                        uitkomst="register onbereikbaar", bron=registry.name, velden=[])
        return unavailable_reply(registry.name)
    composed = compose_check(
        person, markeringen, today=local(ctx.now).date(), zicht=await zicht_for(ctx, person),
        veiligheidshuizen=ctx.services.veiligheidshuizen, system=registry.name, zaak=zaak,
    )
    await ctx.audit(
        "register.raadpleging", person=person.value, soort=person.kind, zaak=zaak, via="check",
        uitkomst="hit" if composed.hit else "no-hit", bron=registry.name,
        veiligheidshuizen=sorted({m.veiligheidshuis for m in markeringen}), velden=list(composed.shown),
    )
    await record_facts(ctx.session, lookup_facts(list(markeringen), ctx))
    if cfg.details_direct:
        ctx.send_elsewhere(OutgoingNote(direct_target(ctx.sender), composed.reply, key="check-details"))
        await ctx.audit("bericht.direct", person=person.value, aan=ctx.sender, velden=list(composed.shown))
        return Doc().line(f"Antwoord op !check {person.masked} staat in uw directe bericht van de bot.").build(
            case_data=True)
    return composed.reply


SPEC = CommandSpec(
    name="check",
    summary="Zoek landelijk of een veiligheidshuis de persoon kent en wat het adviseert.",
    handler=handle,
    roles=VH_INFO_ROLES,
    args=(Arg("id", "BSN (9 cijfers) of SKN"),),
    named=(Named("zaak", "parketnummer of politieregistratienummer: het doel van de raadpleging"),),
    description=("Toont per veiligheidshuis doelgroep, status, advies, geadviseerde afdoening, adviesdatum met "
                 "leeftijd en actualiteit, regisseur en of de markering het huishouden betreft, voor zover uw rol "
                 "en het convenant van het veiligheidshuis dat toestaan (bij hit-no-hit: bekend en contact; het "
                 "advies na !vraag-vrijgave). Het BSN wordt gemaskeerd getoond. Elke raadpleging wordt vastgelegd."),
    examples=("!check 123456782", "!check 123456782 zaak: 10/123456-26", "!check skn:12345678"),
)
