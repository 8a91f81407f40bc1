"""``!outbox``: what mail is waiting, failing or dead; ``!outbox opnieuw <ref>`` retries a dead one."""

from __future__ import annotations

from sqlalchemy import select

from commands.base import Arg, CommandSpec, Context, Named
from commands.parsing import ParsedArgs
from commands.reply import Code, Doc, Part, Reply
from domain.clock import format_local
from domain.errors import UserError
from domain.roles import DECIDING_ROLES
from domain.suggest import nearest
from storage.besluit_models import OutboxMail


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    if args.words:
        action = args.words[0].lower()
        if action == "bevestig" and len(args.words) == 2:
            return await confirm(ctx, args.words[1].upper(), args.named.get("weging", "").strip())
        if action != "opnieuw" or len(args.words) != 2:
            raise UserError("Gebruik: !outbox (overzicht), !outbox opnieuw <ref> of !outbox bevestig <ref> weging: "
                            "<afweging>, bijvoorbeeld !outbox opnieuw T-1A2B3C4D")
        return await retry(ctx, args.words[1].upper())
    rows = (await ctx.session.execute(
        select(OutboxMail).where(OutboxMail.status.in_(("concept", "pending", "dead"))).order_by(OutboxMail.id)
    )).scalars().all()
    if not rows:
        return Doc().line("De outbox is leeg: alle mail is verzonden.").build()
    items: list[list[Part]] = []
    for r in rows:
        state = {"dead": "dood", "concept": "concept, wacht op !outbox bevestig"}.get(
            r.status, "mislukt, nieuwe poging" if r.attempts else "wacht")
        line: list[Part] = [Code(r.ref), f" {r.kind} aan {r.veiligheidshuis}: {state}"]
        if r.attempts:
            line.append(f", {r.attempts} poging(en), laatste fout: {r.last_error or '?'}")
        if r.status == "pending":
            line.append(f", volgende poging {format_local(r.next_attempt_at)}")
        items.append(line)
    return Doc().heading(f"Outbox: {len(rows)} mail(s) niet verzonden").bullets(items).build()


async def find(ctx: Context, ref: str, status: str) -> OutboxMail:
    row = (await ctx.session.execute(select(OutboxMail).where(OutboxMail.ref == ref))).scalar_one_or_none()
    if row is None:
        refs = (await ctx.session.execute(select(OutboxMail.ref).where(OutboxMail.status == status))).scalars().all()
        near = nearest(ref, refs)
        hint = f" Bedoelde u: {', '.join(near)}?" if near else " Zie !outbox."
        raise UserError(f"Geen mail met referentie '{ref[:20]}'.{hint}")
    return row


async def confirm(ctx: Context, ref: str, weging: str) -> Reply:
    """Strict (hit-no-hit) profile: a mandated user confirms a drafted terugkoppeling and records the weighing."""
    if not weging:
        raise UserError("Leg de afweging vast: !outbox bevestig <ref> weging: <waarom deze terugkoppeling nodig is>")
    row = await find(ctx, ref, "concept")
    if row.status != "concept":
        raise UserError(f"Mail {row.ref} is geen concept (status: {row.status}); er valt niets te bevestigen.")
    row.status = "pending"
    row.weging = weging[:2000]
    row.bevestigd_door = ctx.sender
    row.next_attempt_at = ctx.now
    await ctx.audit("mail.bevestigd", ref=row.ref)
    return Doc().line("Concept ", Code(row.ref), " bevestigd; de terugkoppeling gaat nu naar het veiligheidshuis.") \
        .build()


async def retry(ctx: Context, ref: str) -> Reply:
    row = await find(ctx, ref, "dead")
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
    args=(Arg("actie", "opnieuw <ref> of bevestig <ref>", optional=True, variadic=True),),
    named=(Named("weging", "bij bevestig: de afweging waarom deze terugkoppeling nodig is (strikt profiel)"),),
    examples=("!outbox", "!outbox opnieuw T-1A2B3C4D", "!outbox bevestig T-1A2B3C4D weging: plan loopt, VH moet weten"),
)
