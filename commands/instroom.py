"""``!instroom <id> [<id> ...]``: check a batch of incoming suspects and post one compact summary.

Ids may be separated by spaces, commas or new lines (pasted from a list). Every id is checked first; a bad
one rejects the batch with its position, so nobody is silently skipped. A chat adapter: the use case is
``services.instroom``, the summary is composed in ``commands.vh_view``.
"""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context, Named, OutgoingNote, Services
from commands.parsing import ParsedArgs
from commands.vh_view import compose_batch, unavailable_reply
from domain.roles import VH_INFO_ROLES
from services.instroom import MAX_BATCH
from services.lookahead import Ahead
from services.reply import Doc, Reply


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    result = await ctx.services.instroom.instroom(ctx.session, ctx.caller(), args.words, args.named.get("zaak"))
    if result.unavailable:
        return unavailable_reply(result.system)
    assert result.zicht is not None and result.today is not None
    summary = compose_batch(result.items, today=result.today, veiligheidshuizen=ctx.services.veiligheidshuizen,
                            system=result.system, zicht=result.zicht)
    if result.direct_to is not None:
        ctx.send_elsewhere(OutgoingNote(result.direct_to, summary, key="instroom-details"))
        return Doc().line(f"Antwoord op !instroom ({len(result.items)} nummers) staat in uw directe bericht van de "
                          "bot.").build(case_data=True)
    return summary


async def ahead(services: Services, role: str, args: ParsedArgs) -> Ahead:
    return await services.instroom.ahead(role, args.words, args.named.get("zaak"))


SPEC = CommandSpec(
    name="instroom",
    summary="Controleer een reeks binnengekomen verdachten in één keer; één samenvatting.",
    handler=handle,
    ahead=ahead,
    roles=VH_INFO_ROLES,
    args=(Arg("id", "BSN's of SKN's, gescheiden door spaties, komma's of nieuwe regels", variadic=True),),
    named=(Named("zaak", "gezamenlijk doel van de raadpleging (optioneel)"),),
    description=(f"Toont wie bekend is, bij welk veiligheidshuis en hoe actueel het advies is (maximaal "
                 f"{MAX_BATCH} nummers). Details per persoon met !check."),
    examples=("!instroom 123456782 111222333", "!instroom\n123456782\n111222333"),
)
