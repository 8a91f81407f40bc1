"""``!aanmelden``: refer a person not yet known, with suspected complex problems, to the gemeente's veiligheidshuis."""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context
from commands.besluit import mail_identifier, mailer, person_of
from commands.parsing import ParsedArgs
from commands.reply import Bold, Code, Doc, Reply
from domain.clock import format_local
from domain.errors import UserError
from domain.roles import DECIDING_ROLES
from domain.veiligheidshuizen import Veiligheidshuis
from storage.besluit_models import AanmeldingRow
from storage.statistiek_models import AANMELDING, record_fact


def split_gemeente(ctx: Context, words: tuple[str, ...]) -> tuple[Veiligheidshuis, str, tuple[str, ...]]:
    """The longest run of words that names a gemeente ('Wijk bij Duurstede'), then the reason."""
    vhs = ctx.services.veiligheidshuizen
    for n in range(min(len(words), 5), 0, -1):
        name = " ".join(words[:n])
        vh = vhs.for_gemeente(name)
        if vh is not None:
            canonical = next((g for g in vh.gemeenten if _norm(g) == _norm(name)), name)
            return vh, canonical, words[n:]
    near = vhs.nearest_gemeenten(words[0]) if words else []
    hint = f" Bedoelde u: {', '.join(near)}?" if near else ""
    raise UserError(f"Gemeente '{(words[0] if words else '')[:30]}' is niet bekend bij een veiligheidshuis.{hint}")


def _norm(name: str) -> str:
    return " ".join(name.lower().replace("-", " ").split())


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    person = person_of(args.words[0])
    vh, gemeente, rest = split_gemeente(ctx, args.words[1:])
    reden = " ".join(rest).strip()
    if not reden:
        raise UserError("Er ontbreekt een reden. Voorbeeld: !aanmelden 123456782 Utrecht vermoeden van schulden en "
                        "verslaving")
    subject = ctx.services.auditor.subject_of(person.value)
    ctx.session.add(AanmeldingRow(subject=subject, veiligheidshuis=vh.key, created_by=ctx.sender, created_at=ctx.now))
    queued = await mailer(ctx).queue(
        ctx.session, kind="aanmelding", vh=vh, room_id=ctx.room_id, event_id=ctx.event_id, subject_hash=subject,
        now=ctx.now, hold=False, values={
            "persoon": mail_identifier(vh, person, None), "gemeente": gemeente, "reden": reden[:1000],
            "datum": format_local(ctx.now)})
    await ctx.audit("persoon.aangemeld", person=person.value, veiligheidshuis=vh.key, ref=queued.ref)
    await record_fact(ctx.session, kind=AANMELDING, at=ctx.now, veiligheidshuis=vh.key)
    return (Doc().line(Bold("Aangemeld"), f": {person.masked} bij {vh.naam} (gemeente {gemeente}). Mail ",
                       Code(queued.ref), f" gaat naar {vh.mailbox}.")
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
