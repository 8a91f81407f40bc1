"""``!help`` and ``!help <commando>``, generated from the declarations so they never drift from the code."""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context
from commands.parsing import ParsedArgs
from domain.errors import UserError
from domain.roles import EVERYONE, labels
from domain.suggest import nearest
from services.reply import Bold, Code, Doc, Reply


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    table = ctx.services.table
    if args.words:
        name = args.words[0].lstrip("!").lower()
        spec = table.get(name)
        if spec is None:
            hints = nearest(name, table.names())
            hint = f" Bedoelde u: {', '.join('!' + h for h in hints)}?" if hints else ""
            raise UserError(f"Onbekend commando '!{name}'.{hint} Typ !help voor de lijst.")
        return describe(spec, ctx)
    doc = Doc().heading("Commando's van de ZSM-afstemmingsbot")
    visible = [s for s in table.all() if ctx.role in table.allowed_roles(s, ctx.services.settings)]
    doc.bullets([(Code(s.usage), " — ", s.summary) for s in visible])
    doc.line("Meer over één commando: ", Code("!help <commando>"), ", bijvoorbeeld ", Code("!help check"), ".")
    return doc.build()


def describe(spec: CommandSpec, ctx: Context) -> Reply:
    roles = ctx.services.table.allowed_roles(spec, ctx.services.settings)
    doc = Doc().line(Bold(f"!{spec.name}"), " — ", spec.summary)
    doc.line("Gebruik: ", Code(spec.usage))
    if spec.description:
        doc.line(spec.description)
    if spec.args or spec.named:
        doc.bullets(
            [(Code(f"<{a.name}>"), ": ", a.help + (" (optioneel)" if a.optional else "")) for a in spec.args]
            # a part whose own text says when it is required ("verplicht als ...") is not also called optional
            + [(Code(f"{n.key}:"), " ", n.help + ("" if n.required or "verplicht" in n.help else " (optioneel)"))
               for n in spec.named]
        )
    if spec.examples:
        doc.line("Voorbeelden:")
        doc.bullets([(Code(e),) for e in spec.examples])
    if spec.aliases:
        doc.line("Ook te typen als: ", ", ".join("!" + a for a in spec.aliases))
    doc.line("Toegestaan voor: ", "iedereen met een rol" if roles == EVERYONE else labels(roles),
             "." if ctx.role in roles else f". Uw rol ({ctx.role}) mag dit commando niet gebruiken.")
    return doc.build()


SPEC = CommandSpec(
    name="help",
    summary="Toon de commando's, of uitleg over één commando.",
    handler=handle,
    roles=EVERYONE,
    args=(Arg("commando", "naam van een commando", optional=True),),
    description="Zonder argument: de lijst van commando's die u met uw rol mag gebruiken.",
    examples=("!help", "!help check"),
    aliases=("hulp",),
    read_only=True,
)
