"""``!outbox``: the chat adapter of the outbox use case (``services.mail_outbox``): what mail is waiting, failing
or dead; ``!outbox opnieuw <ref>`` retries a dead one, ``!outbox bevestig <ref> weging: ...`` sends a concept."""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context, Named
from commands.parsing import ParsedArgs
from domain.clock import format_local
from domain.errors import UserError
from domain.lifecycles import MailStatus
from domain.roles import DECIDING_ROLES
from services.mail_outbox import OutboxService
from services.reply import Code, Doc, Part, Reply

STATE_LABELS: dict[str, str] = {MailStatus.DEAD: "dood", MailStatus.CONCEPT: "concept, wacht op !outbox bevestig"}


def service(ctx: Context) -> OutboxService:
    return ctx.services.outbox


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    svc = service(ctx)
    if args.words:
        action = args.words[0].lower()
        if action == "bevestig" and len(args.words) == 2:
            ref = await svc.confirm(ctx.session, ctx.caller(), args.words[1].upper(),
                                    args.named.get("weging", "").strip())
            return Doc().line("Concept ", Code(ref),
                              " bevestigd; de terugkoppeling gaat nu naar het veiligheidshuis.").build()
        if action != "opnieuw" or len(args.words) != 2:
            raise UserError("Gebruik: !outbox (overzicht), !outbox opnieuw <ref> of !outbox bevestig <ref> weging: "
                            "<afweging>, bijvoorbeeld !outbox opnieuw T-1A2B3C4D")
        ref = await svc.retry(ctx.session, ctx.caller(), args.words[1].upper())
        return Doc().line("Mail ", Code(ref), " staat weer in de wachtrij.").build()
    rows = await svc.open_mails(ctx.session)
    if not rows:
        return Doc().line("De outbox is leeg: alle mail is verzonden.").build()
    sending = ctx.services.settings.mail.enabled
    items: list[list[Part]] = []
    for r in rows:
        state = STATE_LABELS.get(r.status, "mislukt, nieuwe poging" if r.attempts else "wacht")
        line: list[Part] = [Code(r.ref), f" {r.kind} aan {r.veiligheidshuis}: {state}"]
        if r.attempts:
            line.append(f", {r.attempts} poging(en), laatste fout: {r.last_error or '?'}")
        if r.status == MailStatus.PENDING and sending:
            line.append(f", volgende poging {format_local(r.next_attempt_at)}")
        items.append(line)
    doc = Doc().heading(f"Outbox: {len(rows)} mail(s) niet verzonden").bullets(items)
    if not sending:  # no attempt is planned while mail is off: the listing must not promise one
        doc.line("Mail staat uit in deze installatie ([mail] enabled = false): niets gaat uit tot de beheerder "
                 "mail aanzet.")
    return doc.build()


SPEC = CommandSpec(
    name="outbox",
    summary="Toon mail die wacht, mislukt of dood is; probeer een dode mail opnieuw.",
    handler=handle,
    roles=DECIDING_ROLES | frozenset({"beheerder"}),
    args=(Arg("actie", "opnieuw <ref> of bevestig <ref>", optional=True, variadic=True),),
    named=(Named("weging", "bij bevestig: de afweging waarom deze terugkoppeling nodig is (strikt profiel)"),),
    examples=("!outbox", "!outbox opnieuw T-1A2B3C4D", "!outbox bevestig T-1A2B3C4D weging: plan loopt, VH moet weten"),
    read_only=lambda args: not args.words,  # the listing reads; opnieuw and bevestig write
)
