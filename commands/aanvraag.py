"""``!aanvraag``, ``!aanvragen``, ``!ack``, ``!advies`` and ``!dienst``: advies op aanvraag (PROCESS.md).

The rules (terms, states, chain) live in ``domain.aanvraag``; the database work in ``services.aanvraag``.
These handlers parse, check who may do what, and answer in Dutch.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, cast

from sqlalchemy import select

from commands.base import Arg, CommandSpec, Context, Named
from commands.parsing import ParsedArgs
from commands.reply import Bold, Code, Doc, Part, Reply
from domain import aanvraag as rules
from domain.clock import format_local
from domain.errors import UserError
from domain.identifiers import InvalidIdentifier, parse_person_id
from domain.matrix_ids import USER_ID
from domain.roles import VH_INFO_ROLES, labels
from domain.suggest import nearest
from storage.aanvraag_models import AdviesAanvraag, DienstRooster

if TYPE_CHECKING:
    from services.aanvraag import AanvraagService

REQUEST_ROLES = VH_INFO_ROLES
ONCALL_ROLES = frozenset({"bereikbaarheidsdienst", "veiligheidshuis"})
ROSTER_VIEW_ROLES = VH_INFO_ROLES | ONCALL_ROLES | {"beheerder"}
ROSTER_EDIT_ROLES = frozenset({"kpc", "veiligheidshuis", "beheerder"})
CANCEL_ROLES = frozenset({"ovj", "parketsecretaris", "kpc"})


def service(ctx: Context) -> AanvraagService:
    svc = ctx.services.extras.get("aanvraag")
    if svc is None:
        raise UserError("Advies op aanvraag is in deze installatie niet beschikbaar.")
    return cast("AanvraagService", svc)


def _vh_key(ctx: Context, key: str) -> str:
    key = key.strip().lower()
    if ctx.services.veiligheidshuizen.get(key) is None:
        hints = nearest(key, ctx.services.veiligheidshuizen.keys())
        hint = f" Bedoelde u {' of '.join(hints)}?" if hints else " Zie !dienst voor de sleutels."
        raise UserError(f"Veiligheidshuis '{key[:40]}' is onbekend.{hint}")
    return key


async def _request(ctx: Context, ref_text: str, *, lock: bool = True) -> AdviesAanvraag:
    request_id = rules.parse_ref(ref_text)
    if request_id is None:
        raise UserError(f"'{ref_text[:20]}' is geen aanvraagnummer. Gebruik het nummer uit de melding, zoals A12.")
    req = await service(ctx).get(ctx.session, request_id, lock=lock)
    if req is None:
        raise UserError(f"Aanvraag {rules.ref_text(request_id)} bestaat niet. Typ !aanvragen voor de open aanvragen.")
    return req


# ---------------------------------------------------------------------------------------------- !aanvraag

async def handle_aanvraag(ctx: Context, args: ParsedArgs) -> Reply:
    if args.words[0].lower() == "intrekken":
        return await _cancel(ctx, args)
    svc = service(ctx)
    try:
        person = parse_person_id(args.words[0])
    except InvalidIdentifier as exc:
        raise UserError(f"{exc} Gebruik: !aanvraag <bsn of skn> [termijn] [vraag: <tekst>] [vh: <sleutel>].") from None
    term_words = " ".join(args.words[1:])
    wanted_vh = _vh_key(ctx, args.named["vh"]) if args.named.get("vh") else None
    markeringen = await ctx.services.registry.lookup(person, session=ctx.session)
    if wanted_vh:
        markeringen = [m for m in markeringen if m.veiligheidshuis == wanted_vh]
        if not markeringen:
            raise UserError(f"{person.masked} is niet gemarkeerd door {wanted_vh}; advies op aanvraag is alleen "
                            "mogelijk voor personen in een prioritaire doelgroep van dat veiligheidshuis.")
    elif not markeringen:
        raise UserError(f"{person.masked} is bij geen veiligheidshuis bekend. Advies op aanvraag is alleen mogelijk "
                        "voor personen in een prioritaire doelgroep; geef anders 'vh: <sleutel>' als u het "
                        "veiligheidshuis weet.")
    eligible = [m for m in markeringen if svc.config.vh(m.veiligheidshuis).prioritised(m.doelgroep)]
    if not eligible:
        m = markeringen[0]
        agreed = svc.config.vh(m.veiligheidshuis).doelgroepen
        why = (f"met {m.veiligheidshuis} zijn als prioritair afgesproken: {', '.join(agreed)}" if agreed
               else f"met {m.veiligheidshuis} zijn geen prioritaire doelgroepen afgesproken")
        raise UserError(f"Advies op aanvraag kan niet: {person.masked} valt bij {m.veiligheidshuis} onder doelgroep "
                        f"'{m.doelgroep}', en {why}. Gebruik !check voor het bestaande advies.")
    if len(eligible) > 1:
        keys = ", ".join(m.veiligheidshuis for m in eligible)
        raise UserError(f"{person.masked} valt bij meer veiligheidshuizen onder een prioritaire doelgroep ({keys}). "
                        "Kies er één met 'vh: <sleutel>'.")
    markering = eligible[0]
    try:
        term = rules.parse_term(term_words) if term_words else svc.config.term_for(markering.veiligheidshuis)
    except rules.TermError as exc:
        raise UserError(str(exc)) from None
    existing = (
        await ctx.session.execute(
            select(AdviesAanvraag.id).where(
                AdviesAanvraag.bsn == markering.bsn, AdviesAanvraag.veiligheidshuis == markering.veiligheidshuis,
                AdviesAanvraag.state.in_(rules.ACTIVE),
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        raise UserError(f"Er loopt al een aanvraag voor {person.masked} bij {markering.veiligheidshuis}: "
                        f"{rules.ref_text(existing)}. Typ !aanvragen om de stand te zien.")
    vraag = args.named.get("vraag") or None
    if vraag and len(vraag) > 1000:
        raise UserError("De vraag is te lang (maximaal 1000 tekens). Maak hem korter.")
    req = await svc.open_request(ctx.session, now=ctx.now, sender=ctx.sender, role=ctx.role, room_id=ctx.room_id,
                                 event_id=ctx.event_id, person=person, markering=markering, term=term, vraag=vraag)
    ref = rules.ref_text(req.id)
    vh = ctx.services.veiligheidshuizen.get(req.veiligheidshuis)
    doc = Doc().line(Bold(f"Aanvraag {ref}"), f" verstuurd naar {vh.naam if vh else req.veiligheidshuis} voor ",
                     person.masked, f" (doelgroep {req.doelgroep}).")
    left = rules.describe_left(req.deadline, ctx.now)
    doc.line("Termijn: uiterlijk ", Bold(format_local(req.deadline)), f" ({left}).")
    doc.line("De bereikbaarheidsdienst is " + ("gewaarschuwd in de dienstruimte" if req.oncall_room else
             "niet via Matrix bereikbaar (geen dienstruimte ingesteld)") + " en de centrale mailbox is gemaild.")
    doc.line("Intrekken: ", Code(f"!aanvraag intrekken {ref}"), ". Overzicht: ", Code("!aanvragen"), ".")
    return doc.build(case_data=True)


async def _cancel(ctx: Context, args: ParsedArgs) -> Reply:
    if len(args.words) != 2:
        raise UserError("Gebruik: !aanvraag intrekken <nummer>, bijvoorbeeld !aanvraag intrekken A12.")
    if ctx.role not in CANCEL_ROLES:
        raise UserError(f"Intrekken mag alleen de rol {labels(CANCEL_ROLES)}.")
    req = await _request(ctx, args.words[1])
    problem = await service(ctx).cancel(ctx.session, req, ctx.sender, ctx.role, ctx.now)
    if problem:
        raise UserError(problem)
    ref = rules.ref_text(req.id)
    return Doc().line(f"Aanvraag {ref} is ingetrokken; de bereikbaarheidsdienst is ingelicht.").build()


AANVRAAG = CommandSpec(
    name="aanvraag",
    summary="Vraag een veiligheidshuis om een actueel advies binnen een termijn.",
    handler=handle_aanvraag,
    roles=REQUEST_ROLES,
    args=(Arg("bsn of skn", "het BSN of SKN van de verdachte"),
          Arg("termijn", "24u, 5d, 2wd of 'volgende werkdag 13:00'", optional=True, variadic=True)),
    named=(Named("vraag", "wat ZSM wil weten"), Named("vh", "sleutel van het veiligheidshuis")),
    description=("Alleen voor de doelgroepen die ZSM en het veiligheidshuis als prioritair hebben afgesproken. "
                 "De bereikbaarheidsdienst wordt gewaarschuwd, herinnerd en zo nodig geëscaleerd; zonder advies "
                 "binnen de termijn meldt de bot dat zonder advies beslist wordt. "
                 "'!aanvraag intrekken <nummer>' trekt een aanvraag in."),
    examples=("!aanvraag 123456782 24u vraag: is er een plan van aanpak huiselijk geweld?",
              "!aanvraag 123456782 volgende werkdag 13:00 vh: utrecht", "!aanvraag intrekken A12"),
)


# ---------------------------------------------------------------------------------------------- !aanvragen

async def handle_aanvragen(ctx: Context, args: ParsedArgs) -> Reply:
    rows = (
        await ctx.session.execute(
            select(AdviesAanvraag).where(AdviesAanvraag.state.in_(rules.ACTIVE)).order_by(
                AdviesAanvraag.deadline, AdviesAanvraag.id).limit(50)
        )
    ).scalars().all()
    if not rows:
        return Doc().line("Er zijn geen open aanvragen.").build()
    items: list[list[Part]] = []
    for r in rows:
        from domain.identifiers import PersonId

        person = PersonId(r.person_kind, r.person_value)  # type: ignore[arg-type]
        state = f"bevestigd door {r.acknowledged_by}" if r.state == rules.ACKNOWLEDGED else "nog niet bevestigd"
        items.append([Bold(rules.ref_text(r.id)), f" · {person.masked} · {r.veiligheidshuis} · ",
                      Bold(rules.describe_left(r.deadline, ctx.now)), f" (tot {format_local(r.deadline)}) · {state}"])
    return Doc().heading(f"Open aanvragen ({len(rows)}), meest dringend eerst").bullets(items).build(case_data=True)


AANVRAGEN = CommandSpec(
    name="aanvragen",
    summary="Toon de open aanvragen om advies, meest dringend eerst.",
    handler=handle_aanvragen,
    roles=REQUEST_ROLES | ONCALL_ROLES,
    description="Per aanvraag: nummer, persoon (gemaskeerd), veiligheidshuis, resterende tijd en of hij bevestigd is.",
    examples=("!aanvragen",),
)


# ---------------------------------------------------------------------------------------------- !ack and !advies

async def _member_or_refuse(ctx: Context, req: AdviesAanvraag) -> None:
    if not await service(ctx).is_member(ctx.session, req.veiligheidshuis, ctx.sender):
        raise UserError(f"U staat niet in het rooster van de bereikbaarheidsdienst van {req.veiligheidshuis}; "
                        "alleen de dienst, de achterwacht of de teamleider mag deze aanvraag bevestigen of "
                        "beantwoorden.")


async def handle_ack(ctx: Context, args: ParsedArgs) -> Reply:
    req = await _request(ctx, args.words[0])
    await _member_or_refuse(ctx, req)
    problem = await service(ctx).acknowledge(ctx.session, req, ctx.sender, ctx.now, via="commando")
    if problem:
        raise UserError(problem)
    ref = rules.ref_text(req.id)
    return Doc().line(f"Aanvraag {ref} bevestigd; de escalatie is gestopt. Antwoord vóór ",
                      Bold(format_local(req.deadline)), " met ", Code(f"!advies {ref} <tekst>"), ".").build()


ACK = CommandSpec(
    name="ack",
    summary="Bevestig als bereikbaarheidsdienst dat u een aanvraag oppakt.",
    handler=handle_ack,
    roles=ONCALL_ROLES,
    args=(Arg("nummer", "het aanvraagnummer, zoals A12"),),
    description="Stopt de herinneringen en escalatie. Een ✅-reactie op de melding doet hetzelfde.",
    examples=("!ack A12",),
)


async def handle_advies(ctx: Context, args: ParsedArgs) -> Reply:
    if len(args.words) < 2:
        raise UserError("Er ontbreekt de tekst van het advies. Gebruik: !advies <nummer> <advies met reden>.")
    req = await _request(ctx, args.words[0])
    await _member_or_refuse(ctx, req)
    text = " ".join(args.raw.split()[1:]).strip()
    if len(text) < 10:
        raise UserError("Het advies is te kort; geef een concreet advies met de reden.")
    problem = await service(ctx).answer(ctx.session, req, ctx.sender, text, ctx.now, via="commando")
    if problem:
        raise UserError(problem)
    return Doc().line(f"Advies bij aanvraag {rules.ref_text(req.id)} is doorgegeven aan ZSM en staat nu als "
                      "nieuwste advies in het register.").build()


ADVIES = CommandSpec(
    name="advies",
    summary="Geef als bereikbaarheidsdienst het advies op een aanvraag.",
    handler=handle_advies,
    roles=ONCALL_ROLES,
    args=(Arg("nummer", "het aanvraagnummer, zoals A12"), Arg("tekst", "het advies met reden", variadic=True)),
    description="Het advies verschijnt in de ZSM-ruimte als antwoord op de aanvraag en !check toont het.",
    examples=("!advies A12 Voorwaardelijk sepot met verplichte hulpverlening; plan van aanpak loopt sinds mei.",),
)


# ---------------------------------------------------------------------------------------------- !dienst

async def handle_dienst(ctx: Context, args: ParsedArgs) -> Reply:
    if len(args.words) <= 1:
        return await _show_roster(ctx, _vh_key(ctx, args.words[0]) if args.words else None)
    if ctx.role not in ROSTER_EDIT_ROLES:
        raise UserError(f"Het rooster wijzigen mag alleen de rol {labels(ROSTER_EDIT_ROLES)}. !dienst toont het.")
    if len(args.words) < 4:
        raise UserError("Gebruik: !dienst <vh> <@gebruiker:server> <van> <tot> [backup: <@gebruiker:server>], "
                        "bijvoorbeeld !dienst utrecht @jan:example.nl 23-11-2026 08:00 24-11-2026 08:00.")
    vh = _vh_key(ctx, args.words[0])
    user = args.words[1]
    backup = args.named.get("backup") or None
    for who in (user, backup):
        if who is not None and not USER_ID.match(who):
            raise UserError(f"'{who[:40]}' is geen Matrix-id. Schrijf het als @naam:server.")
    try:
        moments = rules.parse_moments(list(args.words[2:]))
    except rules.MomentError as exc:
        raise UserError(str(exc)) from None
    if len(moments) != 2:
        raise UserError(f"Geef precies twee tijdstippen, van en tot, als {rules.MOMENT_FORMS}.")
    start, end = moments
    if end <= start:
        raise UserError("Het einde van de dienst moet na het begin liggen.")
    if end - start > timedelta(days=31):
        raise UserError("Een dienst duurt hoogstens 31 dagen; voer langere periodes in delen in of importeer een "
                        "iCalendar-bestand.")
    ctx.session.add(DienstRooster(veiligheidshuis=vh, user_id=user, backup_id=backup, starts_at=start, ends_at=end,
                                  source="commando", created_by=ctx.sender, created_at=ctx.now))
    await ctx.audit("dienst.gewijzigd", vh=vh, dienst=user, backup=backup, van=start.isoformat(), tot=end.isoformat())
    doc = Doc().line(f"Dienst {vh}: {user} van {format_local(start)} tot {format_local(end)}",
                     f", achterwacht {backup}." if backup else ".")
    return doc.build()


async def _show_roster(ctx: Context, vh: str | None) -> Reply:
    now = ctx.now
    query = select(DienstRooster).where(DienstRooster.ends_at > now, DienstRooster.starts_at < now + timedelta(days=7))
    if vh:
        query = query.where(DienstRooster.veiligheidshuis == vh)
    rows = (await ctx.session.execute(query.order_by(DienstRooster.veiligheidshuis, DienstRooster.starts_at))).scalars()
    items: list[list[Part]] = []
    for r in rows:
        now_marker = " (nu)" if r.starts_at <= now < r.ends_at else ""
        items.append([Bold(r.veiligheidshuis), f": {r.user_id}{now_marker} · {format_local(r.starts_at)} tot "
                      f"{format_local(r.ends_at)}" + (f" · achterwacht {r.backup_id}" if r.backup_id else "")])
    if not items:
        where = f" voor {vh}" if vh else ""
        return Doc().line(f"Geen diensten ingeroosterd{where} in de komende 7 dagen. Voeg er een toe met ",
                          Code("!dienst <vh> <@gebruiker> <van> <tot>"), ".").build()
    return Doc().heading("Bereikbaarheidsdienst, komende 7 dagen").bullets(items).build()


DIENST = CommandSpec(
    name="dienst",
    summary="Toon of wijzig het rooster van de bereikbaarheidsdienst.",
    handler=handle_dienst,
    roles=ROSTER_VIEW_ROLES,
    args=(Arg("vh", "sleutel van het veiligheidshuis", optional=True),
          Arg("gebruiker en tijden", "@gebruiker:server, van en tot", optional=True, variadic=True)),
    named=(Named("backup", "Matrix-id van de achterwacht"),),
    description=("Zonder argumenten: wie de komende 7 dagen dienst heeft. Met vh, gebruiker, van en tot: een "
                 f"dienst toevoegen (rol {labels(ROSTER_EDIT_ROLES)}); de nieuwste invoer gaat voor. "
                 "Tijden in Nederlandse tijd."),
    examples=("!dienst", "!dienst utrecht @jan:example.nl 23-11-2026 17:00 24-11-2026 08:30 backup: @piet:example.nl"),
)

SPECS = (AANVRAAG, AANVRAGEN, ACK, ADVIES, DIENST)
