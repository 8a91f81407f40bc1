"""``!informeren``: the chat adapter of ``services.informeren`` (whether and when the person was informed, or why
that is deferred). Rendering only; the rules are ``domain.informeren``."""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context, Named, OutgoingNote
from commands.besluit import person_of
from commands.parsing import ParsedArgs
from domain import informeren as rules
from domain.clock import format_local
from domain.errors import UserError
from domain.informeren import InformerenStatus
from domain.roles import DECIDING_ROLES
from services.informeren import Stand
from services.publiek import direct_notice
from services.reply import Bold, Doc, Reply

_ONLY = {InformerenStatus.GEDAAN: ("op", "via"), InformerenStatus.UITGESTELD: ("reden",)}


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    svc = ctx.services.informeren
    person = person_of(args.words[0])
    given = {k for k, v in args.named.items() if v}
    if len(args.words) == 1:
        if given:
            raise UserError(f"{', '.join(sorted(k + ':' for k in given))} hoort bij het vastleggen. Gebruik: "
                            f"{rules.USAGE}.")
        stand = await svc.stand(ctx.session, ctx.caller(), person)
        reply = render_stand(stand)
        direct_to = await svc.direct_to(ctx.session, ctx.caller())
        if direct_to is not None:
            ctx.send_elsewhere(OutgoingNote(direct_to, reply, key="informeren"))
            return Doc().line(direct_notice("Het antwoord op !informeren", person.masked, ctx.sender)).build(
                case_data=True)
        return reply
    status = rules.status_of(args.words[1])
    wrong = sorted(given - set(_ONLY[status]))
    if wrong:
        raise UserError(f"{', '.join(k + ':' for k in wrong)} hoort niet bij '{status.value}'. Gebruik: "
                        f"{rules.USAGE}.")
    if status is InformerenStatus.GEDAAN:
        stand = await svc.gedaan(ctx.session, ctx.caller(), person, args.named.get("op"), args.named.get("via"))
        return (Doc().line(Bold("Vastgelegd"), f": {person.masked} is geïnformeerd op {stand.op:%d-%m-%Y}"
                           + (f" (via {stand.via})." if stand.via else "."))
                .build(case_data=True))
    stand = await svc.uitgesteld(ctx.session, ctx.caller(), person, args.named.get("reden"))
    return (Doc().line(Bold("Vastgelegd"), f": het informeren van {person.masked} is uitgesteld. Reden: {stand.reden}")
            .line(f"Leg het vast met !informeren {person.masked} gedaan zodra het gebeurd is.")
            .build(case_data=True))


def render_stand(s: Stand) -> Reply:
    doc = Doc()
    if s.status is None:
        doc.line(Bold(f"Informeren van {s.person.masked}"), ": nog niets vastgelegd.")
        doc.line(f"Leg het vast met {rules.USAGE}.")
    elif s.status is InformerenStatus.GEDAAN:
        doc.line(Bold(f"Informeren van {s.person.masked}"), f": geïnformeerd op {s.op:%d-%m-%Y}"
                 + (f" via {s.via}" if s.via else "")
                 + (f" (vastgelegd door {s.door} op {format_local(s.vastgelegd)})." if s.vastgelegd else "."))
    else:
        doc.line(Bold(f"Informeren van {s.person.masked}"), ": uitgesteld"
                 + (f" sinds {format_local(s.vastgelegd)} (door {s.door})" if s.vastgelegd else "")
                 + f". Reden: {s.reden}")
    return doc.build(case_data=True)


SPEC = CommandSpec(
    name="informeren",
    summary="Leg vast of en wanneer de persoon is geïnformeerd, of waarom dat is uitgesteld; of toon wat er staat.",
    handler=handle,
    roles=DECIDING_ROLES,
    args=(Arg("id", "BSN of SKN"), Arg("actie", "gedaan of uitgesteld; weglaten om te tonen wat er staat",
                                       optional=True)),
    named=(Named("op", "de dag van het informeren, dd-mm-jjjj (standaard vandaag)"),
           Named("via", "hoe: brief, mondeling, ..."), Named("reden", "waarom het informeren is uitgesteld")),
    description=("Het informeren van de persoon over de verwerking van diens gegevens wordt vastgelegd in het "
                 "auditspoor (wie, wanneer, hoe of waarom uitgesteld) en komt mee in de inzage-export per persoon. "
                 "Het laatste dat is vastgelegd geldt."),
    examples=("!informeren 123456782", "!informeren 123456782 gedaan op: 12-11-2026 via: brief",
              "!informeren 123456782 uitgesteld reden: lopend onderzoek naar medeverdachten"),
    read_only=lambda args: len(args.words) == 1,
    one_statement=True,
)
