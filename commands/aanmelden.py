"""``!aanmelden``: the chat adapter of the referral use case (``services.aanmelden``): refer a person not yet
known, with suspected complex problems, to the gemeente's veiligheidshuis."""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context
from commands.besluit import person_of
from commands.parsing import ParsedArgs
from domain.roles import DECIDING_ROLES
from services.reply import Bold, Code, Doc, Reply


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    svc = ctx.services.aanmelden
    person = person_of(args.words[0])
    r = await svc.refer(ctx.session, ctx.caller(), person, args.words[1:])
    return (Doc().line(Bold("Aangemeld"), f": {r.person.masked} bij {r.vh_naam} (gemeente {r.gemeente}). Mail ",
                       Code(r.ref), f" gaat naar {r.mailbox}.")
            .line("Een later besluit over deze persoon wordt ook aan dit veiligheidshuis teruggekoppeld.")
            .build(case_data=True))


SPEC = CommandSpec(
    name="aanmelden",
    summary="Meld een nog onbekende persoon met vermoedelijk complexe problematiek aan bij het veiligheidshuis.",
    handler=handle,
    roles=DECIDING_ROLES,
    args=(Arg("id", "BSN of SKN"), Arg("gemeente", "woongemeente; bepaalt het veiligheidshuis"),
          Arg("reden", "waarom aanmelden (korte tekst)", variadic=True)),
    description="Stuurt een aanmelding naar de centrale mailbox van het veiligheidshuis van de gemeente.",
    examples=("!aanmelden 123456782 Utrecht vermoeden van schulden en verslaving",
              "!aanmelden 123456782 Wijk bij Duurstede zorgen over huiselijke situatie"),
)
