"""``!werklijst``: the chat adapter of ``services.werklijst`` (known persons who came in without a decision)."""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context
from commands.parsing import ParsedArgs
from domain.roles import DECIDING_ROLES
from services.reply import Reply


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    vh = args.words[0].lower() if args.words else None
    svc = ctx.services.werklijst
    rows = await svc.lijst(ctx.session, ctx.caller(), vh)
    reply = svc.render(rows, ctx.now)
    direct_to = await svc.direct_to(ctx.session, ctx.caller())
    if direct_to is not None and rows:  # not every reader of the room may see the houses
        return ctx.list_in_direct_room(direct_to, reply, key="werklijst-details", title=f"Werklijst ({len(rows)})")
    return reply


SPEC = CommandSpec(
    name="werklijst",
    summary="Toon bekende personen die binnenkwamen en nog geen besluit hebben, oudste eerst.",
    handler=handle,
    roles=DECIDING_ROLES,
    args=(Arg("veiligheidshuis", "alleen de personen die dit veiligheidshuis kent", optional=True),),
    description=("Een persoon die een veiligheidshuis kent en via !check of het instroomsignaal binnenkwam, staat "
                 "hier tot er een besluit is (na de wachttijd uit [werklijst]). Alleen gemaskeerde nummers. De bot "
                 "zet de lijst ook op vaste tijden in de ruimte, bijvoorbeeld bij de dienstwissel."),
    examples=("!werklijst", "!werklijst utrecht"),
)
