"""Release per case under the ``hit-no-hit`` covenant profile: ``!vraag-vrijgave``, ``!vrijgeven``, ``!weigeren``.

PRIVACY.md: under the strict profile a lookup shows only that a veiligheidshuis knows the person and whom to call;
the veiligheidshuis's responsible person decides, case by case, whether the advice is released to the OM. ZSM asks
with ``!vraag-vrijgave``; the responsible person is pinged in the veiligheidshuis's room (masked id, no advice) and
answers with ``!vrijgeven`` or ``!weigeren``; a release holds for the ZSM room that asked, for a limited time, and
``!check`` there then shows the advice to the deciding roles, labelled with who released it and when.
A chat adapter: the use case is ``services.vrijgave``; this module composes the replies, the ping in the
veiligheidshuis's room and the notice to the room that asked.
"""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context, Named, OutgoingNote, Services
from commands.parsing import ParsedArgs
from domain.clock import format_local
from domain.matrix_ids import direct_target
from domain.roles import DECIDING_ROLES, labels
from services.lookahead import Ahead
from services.publiek import direct_notice
from services.reply import Bold, Code, Doc, Reply
from services.vrijgave import Antwoord

RELEASE_ROLES = frozenset({"veiligheidshuis"})


# ------------------------------------------------------------------------------------------- !vraag-vrijgave

async def handle_vraag(ctx: Context, args: ParsedArgs) -> Reply:
    result = await ctx.services.vrijgave.vraag(ctx.session, ctx.caller(), args.words[0], args.named.get("zaak"),
                                               args.named.get("reden"))
    person, zaak, reden = result.person, result.zaak, result.reden
    doc = Doc()
    for verzoek in result.verzoeken:
        vh, ref = verzoek.vh, verzoek.ref
        if not verzoek.nieuw:
            doc.line(f"{vh.naam}: er loopt al een verzoek ({ref}).")
            continue
        ping = Doc()
        ping.line(Bold(f"Vrijgaveverzoek {ref}"), f" van ZSM ({ctx.sender}): het advies over persoon {person.masked}"
                  + (f", zaak {zaak}" if zaak else "") + ".")
        if reden:
            ping.line("Reden: ", reden)
        ping.line("Geef het advies voor deze zaak vrij met ", Code(f"!vrijgeven {ref} [toelichting]"),
                  " of weiger met ", Code(f"!weigeren {ref} <reden>"), ".")
        assert vh.vrijgave_ruimte is not None  # the profile requires it (domain.veiligheidshuizen)
        ctx.send_elsewhere(OutgoingNote(vh.vrijgave_ruimte, ping.build(case_data=True),
                                        mentions=vh.verantwoordelijken, key=f"vrijgave-{verzoek.row_id}"))
        doc.line(f"{vh.naam}: verzoek {ref} gestuurd aan de verantwoordelijke; contact: {vh.contact}.")
    doc.line("Zodra het advies is vrijgegeven ziet u het bij ", Code("!check"), " in deze ruimte.")
    return doc.build(case_data=True)


async def ahead_vraag(services: Services, role: str, args: ParsedArgs) -> Ahead:
    return await services.vrijgave.ahead(role, args.words[0], args.named.get("zaak"), args.named.get("reden"))


VRAAG = CommandSpec(
    name="vraag-vrijgave",
    summary="Vraag een veiligheidshuis (convenant hit-no-hit) het advies voor deze zaak vrij te geven.",
    handler=handle_vraag,
    ahead=ahead_vraag,
    roles=DECIDING_ROLES,
    args=(Arg("id", "BSN (9 cijfers) of SKN"),),
    named=(Named("zaak", "parketnummer: voor welke zaak"), Named("reden", "waarom het advies nodig is")),
    description=("De verantwoordelijke van het veiligheidshuis krijgt een melding (gemaskeerd nummer, geen advies) "
                 "en geeft vrij of weigert. Een vrijgave geldt voor deze ruimte en een beperkte tijd."),
    examples=("!vraag-vrijgave 123456782 zaak: 10/123456-26 reden: voorgeleiding vandaag",),
)


# ------------------------------------------------------------------------------------- !vrijgeven and !weigeren

def _rest(args: ParsedArgs) -> str:
    """What follows the number, whitespace as the message had it collapsed."""
    return " ".join(args.raw.split()[1:])


def _tell_asking_room(ctx: Context, a: Antwoord, note: Doc, key: str) -> None:
    """The answer in the room that asked; when not every reader there may see it, a notice there and the answer
    in the requester's direct room."""
    if not a.direct:
        ctx.send_elsewhere(OutgoingNote(a.room_id, note.build(case_data=True), mentions=(a.requested_by,), key=key))
        return
    ctx.send_elsewhere(OutgoingNote(direct_target(a.requested_by), note.build(case_data=True), key=key + "-direct"))
    notice = Doc().line(direct_notice(f"Vrijgave {a.ref}", a.masked, a.requested_by)).build(case_data=True)
    ctx.send_elsewhere(OutgoingNote(a.room_id, notice, mentions=(a.requested_by,), key=key))


async def handle_vrijgeven(ctx: Context, args: ParsedArgs) -> Reply:
    a = await ctx.services.vrijgave.vrijgeven(ctx.session, ctx.caller(), args.words[0], _rest(args))
    assert a.expires_at is not None
    note = Doc().line(Bold(f"Vrijgave {a.ref}"), f": het advies over {a.masked} is vrijgegeven door {ctx.sender}"
                      + (f" ({a.toelichting})" if a.toelichting else "") + ". Typ ", Code("!check <id>"),
                      f" om het te zien (geldig tot {format_local(a.expires_at)}).")
    _tell_asking_room(ctx, a, note, f"vrijgegeven-{a.row_id}")
    return Doc().line(f"Advies vrijgegeven voor verzoek {a.ref}; ZSM is ingelicht. "
                      f"De vrijgave geldt {a.dagen} dagen.").build()


async def handle_weigeren(ctx: Context, args: ParsedArgs) -> Reply:
    a = await ctx.services.vrijgave.weigeren(ctx.session, ctx.caller(), args.words[0], _rest(args))
    note = Doc().line(Bold(f"Vrijgave {a.ref}"), f": het veiligheidshuis geeft het advies over {a.masked} niet "
                      f"vrij. Reden: {a.toelichting}")
    _tell_asking_room(ctx, a, note, f"geweigerd-{a.row_id}")
    return Doc().line(f"Verzoek {a.ref} geweigerd; ZSM is ingelicht.").build()


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
