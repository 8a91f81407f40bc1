"""``!outbox``: what mail is waiting, failing or dead; ``!outbox opnieuw <ref>`` retries a dead one."""

from __future__ import annotations

from sqlalchemy import select

from commands.base import Arg, CommandSpec, Context, UserError
from commands.parsing import ParsedArgs
from commands.reply import Code, Doc, Part, Reply
from domain.clock import format_local
from domain.roles import DECIDING_ROLES
from domain.suggest import nearest
from storage.besluit_models import OutboxMail


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    if args.words:
        if args.words[0].lower() != "opnieuw" or len(args.words) != 2:
            raise UserError("Gebruik: !outbox (overzicht) of !outbox opnieuw <ref>, bijvoorbeeld !outbox opnieuw "
                            "T-1A2B3C4D")
        return await retry(ctx, args.words[1].upper())
    rows = (await ctx.session.execute(
        select(OutboxMail).where(OutboxMail.status.in_(("pending", "dead"))).order_by(OutboxMail.id)
    )).scalars().all()
    if not rows:
        return Doc().line("De outbox is leeg: alle mail is verzonden.").build()
    items: list[list[Part]] = []
    for r in rows:
        state = "dood" if r.status == "dead" else ("mislukt, nieuwe poging" if r.attempts else "wacht")
        line: list[Part] = [Code(r.ref), f" {r.kind} aan {r.veiligheidshuis}: {state}"]
        if r.attempts:
            line.append(f", {r.attempts} poging(en), laatste fout: {r.last_error or '?'}")
        if r.status == "pending":
            line.append(f", volgende poging {format_local(r.next_attempt_at)}")
        items.append(line)
    return Doc().heading(f"Outbox: {len(rows)} mail(s) niet verzonden").bullets(items).build()


async def retry(ctx: Context, ref: str) -> Reply:
    row = (await ctx.session.execute(select(OutboxMail).where(OutboxMail.ref == ref))).scalar_one_or_none()
    if row is None:
        refs = (await ctx.session.execute(select(OutboxMail.ref).where(OutboxMail.status == "dead"))).scalars().all()
        near = nearest(ref, refs)
        hint = f" Bedoelde u: {', '.join(near)}?" if near else " Zie !outbox."
        raise UserError(f"Geen mail met referentie '{ref[:20]}'.{hint}")
    if row.status != "dead":
        raise UserError(f"Mail {row.ref} is niet dood (status: {row.status}); alleen dode mail kan opnieuw.")
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = ctx.now
    await ctx.audit("mail.opnieuw", ref=row.ref)
    return Doc().line("Mail ", Code(row.ref), " staat weer in de wachtrij.").build()


SPEC = CommandSpec(
    name="outbox",
    summary="Toon mail die wacht, mislukt of dood is; probeer een dode mail opnieuw.",
    handler=handle,
    roles=DECIDING_ROLES | frozenset({"beheerder"}),
    args=(Arg("actie", "opnieuw <ref>", optional=True, variadic=True),),
    examples=("!outbox", "!outbox opnieuw T-1A2B3C4D"),
)
