"""``!check <id> [zaak: <ref>]``: is this person known at any veiligheidshuis, and what does it advise.

A chat adapter: the use case (role rule, identifier types, the national lookup, the releases, the audit record
and the figures) is ``services.check``; the reply is composed in ``commands.vh_view``.
"""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context, Named, OutgoingNote, Services
from commands.parsing import ParsedArgs
from commands.vh_view import compose_check, unavailable_reply
from domain.roles import VH_INFO_ROLES
from services.lookahead import Ahead
from services.reply import Doc, Reply


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    result = await ctx.services.check.check(ctx.session, ctx.caller(), args.words[0], args.named.get("zaak"))
    if result.unavailable:
        return unavailable_reply(result.system)
    assert result.zicht is not None and result.today is not None
    composed = compose_check(
        result.person, result.markeringen, today=result.today, zicht=result.zicht,
        veiligheidshuizen=ctx.services.veiligheidshuizen, system=result.system, zaak=result.zaak,
    )
    if result.direct_to is not None:
        ctx.send_elsewhere(OutgoingNote(result.direct_to, composed.reply, key="check-details"))
        return Doc().line(f"Antwoord op !check {result.person.masked} staat in uw directe bericht van de bot.").build(
            case_data=True)
    return composed.reply


async def ahead(services: Services, role: str, args: ParsedArgs) -> Ahead:
    return await services.check.ahead(role, args.words[0], args.named.get("zaak"))


SPEC = CommandSpec(
    name="check",
    summary="Zoek landelijk of een veiligheidshuis de persoon kent en wat het adviseert.",
    handler=handle,
    ahead=ahead,
    one_statement=True,
    roles=VH_INFO_ROLES,
    args=(Arg("id", "BSN (9 cijfers) of SKN"),),
    named=(Named("zaak", "parketnummer of politieregistratienummer: het doel van de raadpleging"),),
    description=("Toont per veiligheidshuis doelgroep, status, advies, geadviseerde afdoening, adviesdatum met "
                 "leeftijd en actualiteit, regisseur en of de markering het huishouden betreft, voor zover uw rol "
                 "en het convenant van het veiligheidshuis dat toestaan (bij hit-no-hit: bekend en contact; het "
                 "advies na !vraag-vrijgave). Het BSN wordt gemaskeerd getoond. In een gedeelde room staat alleen wat "
                 "elk lid mag zien; anders krijgt de room een korte melding en u het antwoord in uw directe bericht "
                 "van de bot. Elke raadpleging wordt vastgelegd."),
    examples=("!check 123456782", "!check 123456782 zaak: 10/123456-26", "!check skn:12345678"),
)
