"""Release per case under the ``hit-no-hit`` covenant profile: ``!vraag-vrijgave``, ``!vrijgeven``, ``!weigeren``.

PRIVACY.md: under the strict profile a lookup shows only that a veiligheidshuis knows the person and whom to call;
the veiligheidshuis's responsible person decides, case by case, whether the advice is released to the OM. ZSM asks
with ``!vraag-vrijgave``; the responsible person is pinged in the veiligheidshuis's room (masked id, no advice) and
answers with ``!vrijgeven`` or ``!weigeren``; a release holds for the ZSM room that asked, for a limited time, and
``!check`` there then shows the advice to the deciding roles, labelled with who released it and when.
"""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from commands.base import Arg, CommandSpec, Context, Named, OutgoingNote
from commands.parsing import ParsedArgs
from commands.reply import Bold, Code, Doc, Reply
from commands.vh_view import Zicht
from domain.clock import format_local
from domain.errors import UserError
from domain.identifiers import PersonId
from domain.roles import DECIDING_ROLES, labels
from storage.vrijgave_models import Vrijgave

RELEASE_ROLES = frozenset({"veiligheidshuis"})
MAX_TEXT = 500


def ref_text(row_id: int) -> str:
    return f"V{row_id}"


def parse_ref(text: str) -> int | None:
    m = re.fullmatch(r"#?v-?(\d{1,12})", text.strip().lower())
    return int(m.group(1)) if m else None


async def zicht_for(ctx: Context, person: PersonId) -> Zicht:
    """The caller's view of one person: role fields, own region and the releases valid in this room.

    Releases go to the OM (the deciding roles) in the room that asked; other roles never see released advice."""
    settings = ctx.services.settings
    vrijgaven: dict[str, str] = {}
    if ctx.role in DECIDING_ROLES:
        subject = ctx.services.auditor.subject_of(person.value)
        rows = (await ctx.session.execute(select(Vrijgave).where(
            Vrijgave.subject == subject, Vrijgave.state == "vrijgegeven", Vrijgave.room_id == ctx.room_id,
            Vrijgave.expires_at > ctx.now))).scalars().all()
        for row in rows:
            vrijgaven[row.veiligheidshuis] = (f"vrijgegeven door {row.decided_by} op {format_local(row.decided_at)} "
                                              f"({ref_text(row.id)})" if row.decided_at else "vrijgegeven")
    return Zicht(role_fields=settings.velden.get(ctx.role, frozenset()), regio=settings.regio, vrijgaven=vrijgaven)


# ------------------------------------------------------------------------------------------- !vraag-vrijgave

async def handle_vraag(ctx: Context, args: ParsedArgs) -> Reply:
    from commands.check import parse_id, parse_zaak, require_vh_role

    require_vh_role(ctx, "vraag-vrijgave")
    cfg = ctx.services.settings.check
    person = parse_id(args.words[0], cfg)
    zaak = parse_zaak(args, cfg)
    reden = (args.named.get("reden") or "").strip() or None
    if reden and len(reden) > MAX_TEXT:
        raise UserError(f"De reden is te lang (maximaal {MAX_TEXT} tekens).")
    markeringen = await ctx.services.registry.lookup(person, session=ctx.session)
    vhs = ctx.services.veiligheidshuizen
    strict = [vh for vh in (vhs.get(m.veiligheidshuis) for m in markeringen) if vh and vh.profiel == "hit-no-hit"]
    if not markeringen:
        raise UserError("Deze persoon is niet bekend bij een veiligheidshuis; er is niets om vrij te geven.")
    if not strict:
        raise UserError("Geen vrijgave nodig: de veiligheidshuizen die deze persoon kennen tonen hun advies al "
                        "(convenant generiek). Gebruik !check.")
    subject = ctx.services.auditor.subject_of(person.value)
    doc = Doc()
    for vh in dict.fromkeys(strict):
        open_row = (await ctx.session.execute(select(Vrijgave).where(
            Vrijgave.subject == subject, Vrijgave.veiligheidshuis == vh.key, Vrijgave.room_id == ctx.room_id,
            Vrijgave.state == "open"))).scalars().first()
        if open_row is not None:
            doc.line(f"{vh.naam}: er loopt al een verzoek ({ref_text(open_row.id)}).")
            continue
        row = Vrijgave(veiligheidshuis=vh.key, subject=subject, masked=person.masked, zaak=zaak or "", reden=reden,
                       state="open", requested_by=ctx.sender, room_id=ctx.room_id, event_id=ctx.event_id,
                       opened_at=ctx.now)
        ctx.session.add(row)
        await ctx.session.flush()
        ref = ref_text(row.id)
        ping = Doc()
        ping.line(Bold(f"Vrijgaveverzoek {ref}"), f" van ZSM ({ctx.sender}): het advies over persoon {person.masked}"
                  + (f", zaak {zaak}" if zaak else "") + ".")
        if reden:
            ping.line("Reden: ", reden)
        ping.line("Geef het advies voor deze zaak vrij met ", Code(f"!vrijgeven {ref} [toelichting]"),
                  " of weiger met ", Code(f"!weigeren {ref} <reden>"), ".")
        assert vh.vrijgave_ruimte is not None  # the profile requires it (domain.veiligheidshuizen)
        ctx.send_elsewhere(OutgoingNote(vh.vrijgave_ruimte, ping.build(case_data=True),
                                        mentions=vh.verantwoordelijken, key=f"vrijgave-{row.id}"))
        await ctx.audit("vrijgave.gevraagd", person=person.value, ref=ref, veiligheidshuis=vh.key, zaak=zaak,
                        gepingd=list(vh.verantwoordelijken), ruimte=vh.vrijgave_ruimte)
        doc.line(f"{vh.naam}: verzoek {ref} gestuurd aan de verantwoordelijke; contact: {vh.contact}.")
    doc.line("Zodra het advies is vrijgegeven ziet u het bij ", Code("!check"), " in deze ruimte.")
    return doc.build(case_data=True)


VRAAG = CommandSpec(
    name="vraag-vrijgave",
    summary="Vraag een veiligheidshuis (convenant hit-no-hit) het advies voor deze zaak vrij te geven.",
    handler=handle_vraag,
    roles=DECIDING_ROLES,
    args=(Arg("id", "BSN (9 cijfers) of SKN"),),
    named=(Named("zaak", "parketnummer: voor welke zaak"), Named("reden", "waarom het advies nodig is")),
    description=("De verantwoordelijke van het veiligheidshuis krijgt een melding (gemaskeerd nummer, geen advies) "
                 "en geeft vrij of weigert. Een vrijgave geldt voor deze ruimte en een beperkte tijd."),
    examples=("!vraag-vrijgave 123456782 zaak: 10/123456-26 reden: voorgeleiding vandaag",),
)


# ------------------------------------------------------------------------------------- !vrijgeven and !weigeren

async def _open_request(ctx: Context, ref: str) -> Vrijgave:
    row_id = parse_ref(ref)
    if row_id is None:
        raise UserError(f"'{ref[:20]}' is geen vrijgavenummer; typ het nummer uit de melding, zoals V12.")
    row = await ctx.session.get(Vrijgave, row_id)
    if row is None:
        raise UserError(f"Vrijgaveverzoek {ref_text(row_id)} bestaat niet; kijk naar het nummer in de melding.")
    vh = ctx.services.veiligheidshuizen.get(row.veiligheidshuis)
    if vh is None or ctx.sender not in vh.verantwoordelijken:
        raise UserError(f"Alleen de verantwoordelijke van {vh.naam if vh else row.veiligheidshuis} mag verzoek "
                        f"{ref_text(row.id)} beantwoorden.",
                        audit=("vrijgave.geweigerd_recht", {"ref": ref_text(row.id), "vh": row.veiligheidshuis}))
    if row.state != "open":
        raise UserError(f"Verzoek {ref_text(row.id)} is al beantwoord ({row.state}).")
    return row


def _text(args: ParsedArgs) -> str | None:
    rest = " ".join(args.raw.split()[1:]).strip()
    if len(rest) > MAX_TEXT:
        raise UserError(f"De toelichting is te lang (maximaal {MAX_TEXT} tekens).")
    return rest or None


async def handle_vrijgeven(ctx: Context, args: ParsedArgs) -> Reply:
    row = await _open_request(ctx, args.words[0])
    days = ctx.services.settings.privacy.vrijgave_dagen
    row.state, row.decided_by, row.decided_at = "vrijgegeven", ctx.sender, ctx.now
    row.toelichting, row.expires_at = _text(args), ctx.now + timedelta(days=days)
    ref = ref_text(row.id)
    await ctx.audit("vrijgave.vrijgegeven", ref=ref, veiligheidshuis=row.veiligheidshuis, dagen=days,
                    aan=row.requested_by, ruimte=row.room_id, subject=row.subject)
    note = Doc().line(Bold(f"Vrijgave {ref}"), f": het advies over {row.masked} is vrijgegeven door {ctx.sender}"
                      + (f" ({row.toelichting})" if row.toelichting else "") + ". Typ ", Code("!check <id>"),
                      f" om het te zien (geldig tot {format_local(row.expires_at)}).")
    ctx.send_elsewhere(OutgoingNote(row.room_id, note.build(case_data=True), mentions=(row.requested_by,),
                                    key=f"vrijgegeven-{row.id}"))
    return Doc().line(f"Advies vrijgegeven voor verzoek {ref}; ZSM is ingelicht. "
                      f"De vrijgave geldt {days} dagen.").build()


async def handle_weigeren(ctx: Context, args: ParsedArgs) -> Reply:
    reden = _text(args)
    if not reden:
        raise UserError("Geef een reden: !weigeren <nummer> <reden>.")
    row = await _open_request(ctx, args.words[0])
    row.state, row.decided_by, row.decided_at, row.toelichting = "geweigerd", ctx.sender, ctx.now, reden
    ref = ref_text(row.id)
    await ctx.audit("vrijgave.geweigerd", ref=ref, veiligheidshuis=row.veiligheidshuis, aan=row.requested_by,
                    subject=row.subject)
    note = Doc().line(Bold(f"Vrijgave {ref}"), f": het veiligheidshuis geeft het advies over {row.masked} niet vrij. "
                      f"Reden: {reden}")
    ctx.send_elsewhere(OutgoingNote(row.room_id, note.build(case_data=True), mentions=(row.requested_by,),
                                    key=f"geweigerd-{row.id}"))
    return Doc().line(f"Verzoek {ref} geweigerd; ZSM is ingelicht.").build()


VRIJGEVEN = CommandSpec(
    name="vrijgeven",
    summary="Geef als verantwoordelijke van het veiligheidshuis het advies voor één zaak vrij.",
    handler=handle_vrijgeven,
    roles=RELEASE_ROLES,
    args=(Arg("nummer", "het vrijgavenummer uit de melding, zoals V12"),
          Arg("toelichting", "optioneel", optional=True, variadic=True)),
    description=f"Alleen voor de verantwoordelijke(n) van het veiligheidshuis; vastgelegd in het auditspoor "
                f"(rol {labels(RELEASE_ROLES)}).",
    examples=("!vrijgeven V12", "!vrijgeven V12 alleen voor de voorgeleiding"),
)

WEIGEREN = CommandSpec(
    name="weigeren",
    summary="Weiger als verantwoordelijke een vrijgaveverzoek, met reden.",
    handler=handle_weigeren,
    roles=RELEASE_ROLES,
    args=(Arg("nummer", "het vrijgavenummer, zoals V12"), Arg("reden", "waarom niet", variadic=True)),
    examples=("!weigeren V12 lopend hulpverleningstraject; bel de regisseur",),
)

SPECS = (VRAAG, VRIJGEVEN, WEIGEREN)
