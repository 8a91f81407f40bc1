"""``!besluit``: record the OvJ's afdoening and queue the terugkoppeling in the same transaction.

Rules come from ``domain.afdoeningen.feedback_for``; this module only gathers the facts and writes rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select

from commands.base import Arg, CommandSpec, Context, Named
from commands.parsing import ParsedArgs
from commands.reply import Bold, Code, Doc, Part, Reply
from domain.advies import Freshness, freshness, is_minor
from domain.afdoeningen import Afdoening, Catalogus, Kennis, advies_uitkomst, feedback_for
from domain.clock import format_local, local
from domain.errors import UserError
from domain.identifiers import InvalidIdentifier, PersonId, parse_person_id
from domain.roles import DECIDING_ROLES
from domain.suggest import nearest
from domain.veiligheidshuizen import Veiligheidshuis
from integrations.mail.outbox import MailService
from integrations.registry import RegistryUnavailable
from storage.besluit_models import AanmeldingRow, BesluitRow, OutboxMail
from storage.models import AuditRecord
from storage.redaction import mark_case
from storage.statistiek_models import BESLUIT_BEKEND, Feit, record_facts

RECLASSERING = ("reclassering", "recl", "+r")
MONDELING = ("mondeling", "mond", "+m")
UNDO = ("ongedaan", "terug", "intrekken")


def catalogue(ctx: Context) -> Catalogus:
    cat = ctx.services.afdoeningen
    assert cat is not None, "afdoeningen not wired"
    return cat


def mailer(ctx: Context) -> MailService:
    m = ctx.services.mail
    assert m is not None, "mail not wired"
    return m


def person_of(typed: str) -> PersonId:
    try:
        return parse_person_id(typed)
    except InvalidIdentifier as exc:
        raise UserError(str(exc)) from None


def afdoening_of(cat: Catalogus, typed: str) -> Afdoening:
    found = cat.get(typed)
    if found is None:
        near = cat.nearest(typed)
        hint = f" Bedoelde u: {', '.join(near)}?" if near else ""
        raise UserError(f"Onbekende afdoening '{typed[:20]}'.{hint} Bekende codes: {', '.join(cat.codes())}.")
    return found


def flags_of(words: tuple[str, ...]) -> tuple[bool, bool]:
    reclassering = mondeling = False
    for w in words:
        lw = w.lower()
        if lw in RECLASSERING:
            reclassering = True
        elif lw in MONDELING:
            mondeling = True
        elif lw.startswith("motivering") or lw.startswith("zaak"):
            raise UserError("Schrijf 'motivering: <tekst>' of 'zaak: <nummer>' met een dubbele punt.")
        else:
            near = nearest(lw, [*RECLASSERING[:1], *MONDELING[:1]])
            hint = f" Bedoelde u '{near[0]}'?" if near else ""
            raise UserError(f"Onbekende optie '{w[:20]}'.{hint} Mogelijk: reclassering, mondeling, "
                            "motivering: <tekst>, zaak: <nummer>.")
    return reclassering, mondeling


def mail_identifier(vh: Veiligheidshuis, person: PersonId, skn: str | None) -> str:
    """PRIVACY.md: the BSN only where every party may process it; per veiligheidshuis ``identificatie = [...]``."""
    allowed = vh.extra.get("identificatie", ["bsn", "skn"])
    if not isinstance(allowed, list):
        allowed = ["bsn", "skn"]
    if person.kind in allowed:
        return f"{person.kind.upper()} {person.value}"
    if "skn" in allowed and skn:
        return f"SKN {skn}"
    raise UserError(f"{vh.naam} mag geen {person.kind.upper()} ontvangen en er is geen SKN bekend. Geef het SKN: "
                    "skn:<nummer> in plaats van het BSN.")


async def kennis_of(ctx: Context, person: PersonId, cat: Catalogus) -> tuple[list[Kennis], str | None]:
    try:
        markings = await ctx.services.registry.lookup(person, session=ctx.session)
    except RegistryUnavailable:
        raise UserError("Het register is nu niet bereikbaar; er is niets vastgelegd. Probeer het zo opnieuw.") from None
    today = local(ctx.now).date()
    out = []
    for m in markings:
        advised = None
        if m.geadviseerde_afdoening:
            hit = cat.get(m.geadviseerde_afdoening)
            advised = hit.code if hit else m.geadviseerde_afdoening.strip().lower()
        out.append(Kennis(m.veiligheidshuis, is_minor(m.geboortedatum, today), advised,
                          freshness(m.advies_datum, today) is not Freshness.NOT_CURRENT))
    skn = next((m.skn for m in markings if m.skn), None)
    return out, skn


def besluit_figures(afd: Afdoening, kennis: list[Kennis]) -> list[list[object]]:
    """[veiligheidshuis, gevolgd|afgeweken|geen_advies, minderjarig] per house that knows the person. Kept in the
    decision's audit record, so a later replacement or undo can take back exactly what this decision counted."""
    per_vh: dict[str, Kennis] = {}
    for k in kennis:
        first = per_vh.get(k.veiligheidshuis)
        if first is None or (not (first.advies_actueel and first.geadviseerd) and k.advies_actueel and k.geadviseerd):
            per_vh[k.veiligheidshuis] = k
    minor = {vh: any(k.minderjarig for k in kennis if k.veiligheidshuis == vh) for vh in per_vh}
    return [[vh, advies_uitkomst(afd, k), minor[vh]] for vh, k in per_vh.items()]


def _facts(figures: list[list[object]], at: datetime, aantal: int) -> list[Feit]:
    return [Feit(BESLUIT_BEKEND, at, str(vh), minderjarig=bool(minor), outcome=str(uitkomst), aantal=aantal)
            for vh, uitkomst, minor in figures]


async def take_back_figures(ctx: Context, subject: str, rows: list[BesluitRow]) -> None:
    """A replaced, undone or removed decision no longer counts: a -1 fact at the decision's own time per +1 it
    wrote, so the figures count each decision once, as its final version, in the period it was first taken."""
    active = {b.event_id: b for b in rows if b.status == "actief"}
    if not active:
        return
    audits = (await ctx.session.execute(
        select(AuditRecord.details).where(AuditRecord.subject == subject, AuditRecord.kind == "besluit.vastgelegd")
    )).scalars().all()
    facts: list[Feit] = []
    for details in audits:
        row = active.get(str(details.get("event")))
        if row is not None and isinstance(details.get("statistiek"), list):
            facts += _facts(details["statistiek"], row.decided_at, -1)
    await record_facts(ctx.session, facts)


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    if args.words[0].lower() in UNDO:
        return await undo(ctx, args)
    if len(args.words) < 2:
        raise UserError("Er ontbreekt <afdoening>. Voorbeeld: !besluit 123456782 osb")
    cat = catalogue(ctx)
    person = person_of(args.words[0])
    afd = afdoening_of(cat, args.words[1])
    reclassering, mondeling = flags_of(args.words[2:])
    zaak = args.named.get("zaak", "").strip()[:64]
    motivering = args.named.get("motivering", "").strip() or None
    if "motivering" in args.named and not motivering:
        raise UserError("'motivering:' is leeg. Schrijf de reden erachter, bijvoorbeeld: motivering: licht feit.")
    subject = ctx.services.auditor.subject_of(person.value)
    kennis, skn = await kennis_of(ctx, person, cat)
    referred = (await ctx.session.execute(
        select(AanmeldingRow.veiligheidshuis).where(AanmeldingRow.subject == subject).order_by(AanmeldingRow.id)
    )).scalars().all()
    outcome = feedback_for(afd, kennis, aangemeld_bij=referred, motivering=motivering)
    if outcome.weigering:
        message = outcome.weigering
        for k in kennis:
            if (known := ctx.services.veiligheidshuizen.get(k.veiligheidshuis)) is not None:
                message = message.replace(f"advies van {k.veiligheidshuis} ", f"advies van {known.naam} ")
        raise UserError(message)
    earlier = list((await ctx.session.execute(
        select(BesluitRow).where(BesluitRow.subject == subject, BesluitRow.zaak == zaak)
    )).scalars().all())
    earlier_ids = [b.id for b in earlier]
    earlier_mails = list((await ctx.session.execute(
        select(OutboxMail).where(OutboxMail.besluit_id.in_(earlier_ids))
    )).scalars().all()) if earlier_ids else []
    await take_back_figures(ctx, subject, earlier)
    if outcome.verwijderen:
        return await remove_case(ctx, person, earlier, earlier_mails)

    sent_to = {m.veiligheidshuis for m in earlier_mails if m.status == "sent"}
    cancelled = 0
    for m in earlier_mails:
        if m.status in ("concept", "pending", "dead"):
            m.status = "vervallen"
            m.body_text = m.body_html = None
            cancelled += 1
    active = [b for b in earlier if b.status == "actief"]
    for b in active:
        b.status = "vervangen"
    row = BesluitRow(
        subject=subject, zaak=zaak, afdoening=afd.code, reclassering=reclassering, mondeling=mondeling,
        motivering=motivering, status="actief", decided_by=ctx.sender, role=ctx.role, decided_at=ctx.now,
        event_id=ctx.event_id, room_id=ctx.room_id,
    )
    ctx.session.add(row)
    await ctx.session.flush()
    figures = besluit_figures(afd, kennis)
    await ctx.audit("besluit.vastgelegd", person=person.value, afdoening=afd.code, terugkoppeling=outcome.inhoud,
                    ontvangers=list(outcome.ontvangers), mondeling=mondeling, correctie=bool(active),
                    statistiek=figures)
    await record_facts(ctx.session, _facts(figures, ctx.now, 1))

    doc = Doc()
    doc.line(Bold("Besluit vastgelegd"), f" voor {person.masked}: ", afd.label,
             f" (zaak {zaak})" if zaak else "", ".")
    if active:
        doc.line("Dit vervangt het eerdere besluit" + (f"; {cancelled} nog niet verzonden mail(s) vervallen."
                                                       if cancelled else "."))
    if reclassering:
        doc.line("Reclassering is om een rapport gevraagd.")
    doc.line("Terugkoppeling: ", outcome.uitleg, ".")
    missing = [k for k in outcome.ontvangers if ctx.services.veiligheidshuizen.get(k) is None]
    targets = [vh for k in outcome.ontvangers if (vh := ctx.services.veiligheidshuizen.get(k)) is not None]
    if mondeling and targets:
        doc.line("Mondeling teruggekoppeld aan: ", ", ".join(vh.naam for vh in targets), "; er gaat geen mail.")
    elif targets:
        mail = mailer(ctx)
        refs: list[list[Part]] = []
        for vh in targets:
            kind = "correctie" if vh.key in sent_to else "terugkoppeling"
            concept = vh.profiel == "hit-no-hit"
            queued = await mail.queue(
                ctx.session, kind=kind, vh=vh, room_id=ctx.room_id, event_id=ctx.event_id, subject_hash=subject,
                now=ctx.now, besluit_id=row.id, concept=concept, values={
                    "persoon": mail_identifier(vh, person, skn), "zaak": zaak,
                    "datum": format_local(ctx.now), "afdoening": afd.label, "reclassering": reclassering,
                    "motivering": motivering if outcome.inhoud == "volledig" else None,
                    "beperkt": outcome.inhoud == "beperkt",
                })
            item: list[Part] = [Code(queued.ref), f" {'CORRECTIE ' if kind == 'correctie' else ''}aan {vh.naam}"]
            if concept:
                item += [" (concept: strikt profiel; verzenden na !outbox bevestig ", Code(queued.ref),
                         " weging: <afweging>)"]
            refs.append(item)
        doc.line(f"Mail klaargezet (ongedaan maken kan binnen {mail.settings.herroep_seconden} s zolang niet "
                 "verzonden):")
        doc.bullets(refs)
    if missing:
        doc.line("Let op: geen mailbox bekend voor ", ", ".join(missing), "; koppel mondeling terug.")
    return doc.build(case_data=True)


async def remove_case(ctx: Context, person: PersonId, earlier: list[BesluitRow], mails: list[OutboxMail]) -> Reply:
    """Technisch sepot 01: nothing is sent, and what the bot holds on this case goes, including its own earlier
    messages in this room about the person (the decision, the mail notices, !check replies): they are queued for
    redaction here, in the command's transaction, and the bot's redaction loop removes them from the room."""
    besluit_ids = [b.id for b in earlier]
    already = sorted({m.veiligheidshuis for m in mails if m.status == "sent"})
    if mails:
        await ctx.session.execute(delete(OutboxMail).where(OutboxMail.id.in_([m.id for m in mails])))
    if besluit_ids:
        await ctx.session.execute(delete(BesluitRow).where(BesluitRow.id.in_(besluit_ids)))
    redact = await mark_case(ctx.session, room_id=ctx.room_id, subject=ctx.services.auditor.subject_of(person.value),
                             event_ids=[b.event_id for b in earlier if b.room_id == ctx.room_id])
    await ctx.services.auditor.record(ctx.session, kind="zaak.verwijderd", at=ctx.now, actor=ctx.sender,
                                      role=ctx.role, details={"reden": "technisch sepot 01", "berichten": redact})
    doc = Doc().line(Bold("Technisch sepot 01"), f" voor {person.masked}: geen terugkoppeling.")
    doc.line(f"Verwijderd: {len(besluit_ids)} eerdere vastlegging(en) en {len(mails)} mail(s) over deze zaak"
             + (f"; {redact} eerder bericht(en) van de bot hierover worden uit de ruimte verwijderd." if redact
                else "."))
    if already:
        doc.line("Let op: er was al terugkoppeling verzonden aan ", ", ".join(already),
                 ". Vraag dat veiligheidshuis de gegevens te verwijderen.")
    return doc.build()


async def undo(ctx: Context, args: ParsedArgs) -> Reply:
    if len(args.words) != 2:
        raise UserError("Ongedaan maken: !besluit ongedaan <BSN of SKN> [zaak: <nummer>]")
    person = person_of(args.words[1])
    zaak = args.named.get("zaak", "").strip()[:64]
    subject = ctx.services.auditor.subject_of(person.value)
    row = (await ctx.session.execute(
        select(BesluitRow).where(BesluitRow.subject == subject, BesluitRow.zaak == zaak, BesluitRow.status == "actief")
    )).scalar_one_or_none()
    if row is None:
        raise UserError(f"Er is geen besluit voor {person.masked}" + (f" (zaak {zaak})" if zaak else "")
                        + " om ongedaan te maken.")
    window = mailer(ctx).settings.herroep_seconden
    mails = list((await ctx.session.execute(select(OutboxMail).where(OutboxMail.besluit_id == row.id))).scalars())
    if any(m.status == "sent" for m in mails):
        raise UserError("De terugkoppeling is al verzonden; ongedaan maken kan niet meer. Geef het juiste besluit "
                        "opnieuw met !besluit: dan gaat er een correctie.")
    if ctx.now - row.decided_at > timedelta(seconds=window):
        raise UserError(f"Ongedaan maken kan alleen binnen {window} seconden. Geef het juiste besluit opnieuw met "
                        "!besluit: dan gaat er een correctie.")
    await take_back_figures(ctx, subject, [row])
    row.status = "ingetrokken"
    for m in mails:
        m.status = "vervallen"
        m.body_text = m.body_html = None
    await ctx.audit("besluit.ingetrokken", person=person.value, besluit=row.id)
    return Doc().line(Bold("Besluit ongedaan gemaakt"), f" voor {person.masked}; {len(mails)} mail(s) gaan niet "
                      "meer.").build(case_data=True)


SPEC = CommandSpec(
    name="besluit",
    summary="Leg de afdoening vast en stuur automatisch de terugkoppeling aan het veiligheidshuis.",
    handler=handle,
    roles=DECIDING_ROLES,
    args=(Arg("id", "BSN of SKN"), Arg("afdoening", "code uit de afdoeningscatalogus, bv. osb, vs, halt, 01"),
          Arg("opties", "reclassering (rapport gevraagd), mondeling (mondeling teruggekoppeld)", optional=True,
              variadic=True)),
    named=(Named("zaak", "zaaknummer, als er meer zaken zijn"),
           Named("motivering", "verplicht als het besluit afwijkt van een actueel advies")),
    description=("Legt het besluit vast met wie en wanneer, en zet de terugkoppeling klaar voor het veiligheidshuis "
                 "dat de persoon kent (of waar hij is aangemeld). Technisch sepot 01: geen terugkoppeling en wat de "
                 "bot over de zaak bewaart wordt verwijderd. Een tweede !besluit voor dezelfde zaak vervangt het "
                 "eerste en stuurt een correctie. Ongedaan maken: !besluit ongedaan <id>, kort na het besluit en "
                 "alleen zolang de mail niet weg is."),
    examples=("!besluit 123456782 osb", "!besluit 123456782 vs reclassering motivering: licht feit, eerste keer",
              "!besluit 123456782 halt mondeling", "!besluit 123456782 01", "!besluit ongedaan 123456782"),
    aliases=("b",),
)
