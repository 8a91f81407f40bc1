"""``!aanvraag``, ``!aanvragen``, ``!ack``, ``!advies`` and ``!dienst``: advies op aanvraag (PROCESS.md).

The rules (terms, states, chain) live in ``domain.aanvraag``; the use case in ``services.aanvraag`` and the
roster in ``services.rooster``. These handlers parse, check the role, call the service and answer in Dutch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from commands.base import Arg, CommandSpec, Context, Named, OutgoingNote, Services
from commands.parsing import ParsedArgs
from domain import aanvraag as rules
from domain.clock import format_local
from domain.errors import UserError
from domain.identifiers import InvalidIdentifier, PersonId, parse_person_id
from domain.matrix_ids import USER_ID
from domain.roles import VH_INFO_ROLES, labels
from domain.suggest import nearest
from services import rooster
from services.aanvraag import MailNaIntrekking
from services.reply import Bold, Code, Doc, Part, Reply

if TYPE_CHECKING:
    from services.aanvraag import AanvraagService
    from services.lookahead import Ahead

REQUEST_ROLES = VH_INFO_ROLES
ONCALL_ROLES = frozenset({"bereikbaarheidsdienst", "veiligheidshuis"})
ROSTER_VIEW_ROLES = VH_INFO_ROLES | ONCALL_ROLES | {"beheerder"}
ROSTER_EDIT_ROLES = frozenset({"kpc", "veiligheidshuis", "beheerder"})
CANCEL_ROLES = frozenset({"ovj", "parketsecretaris", "kpc"})


def service(ctx: Context) -> AanvraagService:
    return ctx.services.aanvraag


def _vh_key(services: Services, key: str) -> str:
    key = key.strip().lower()
    if services.veiligheidshuizen.get(key) is None:
        hints = nearest(key, services.veiligheidshuizen.keys())
        hint = f" Bedoelde u {' of '.join(hints)}?" if hints else " Zie !dienst voor de sleutels."
        raise UserError(f"Veiligheidshuis '{key[:40]}' is onbekend.{hint}")
    return key


def _about(ctx: Context, person: str) -> None:
    """The reply is about this person: the dispatcher stores the keyed hash on it (sepot 01 finds it)."""
    subject = ctx.services.auditor.subject_of(person)
    if subject not in ctx.subjects:
        ctx.subjects.append(subject)


# ---------------------------------------------------------------------------------------------- !aanvraag

USAGE = ("!aanvraag <bsn of skn> [termijn] feit: <het feit in een paar woorden> voornemen: <voorgenomen besluit> "
         "[type: <zaaktype>] [vh: <sleutel>] [vraag: <tekst>]")


def _asked(services: Services, args: ParsedArgs) -> tuple[PersonId, str, str | None, rules.Schets]:
    """The request as typed: person, term, house and sketch; refused in Dutch when any of it does not hold."""
    try:
        person = parse_person_id(args.words[0])
    except InvalidIdentifier as exc:
        raise UserError(f"{exc} Gebruik: {USAGE}.") from None
    term_words = " ".join(args.words[1:])
    wanted_vh = _vh_key(services, args.named["vh"]) if args.named.get("vh") else None
    zaaktype = services.aanvraag.zaaktype(args.named["type"]) if args.named.get("type") else None
    try:
        schets = rules.check_schets(args.named.get("feit") or None, args.named.get("voornemen") or None, zaaktype)
    except rules.SchetsError as exc:
        raise UserError(str(exc)) from None
    return person, term_words, wanted_vh, schets


async def ahead_aanvraag(services: Services, role: str, args: ParsedArgs) -> Ahead:
    """An outside registry asked before the transaction (``services.lookahead``); a cancellation looks nobody
    up."""
    if args.words[0].lower() == "intrekken":
        return {}
    person, _, _, _ = _asked(services, args)
    return await services.aanvraag.ahead(person)


async def handle_aanvraag(ctx: Context, args: ParsedArgs) -> Reply:
    if args.words[0].lower() == "intrekken":
        return await _cancel(ctx, args)
    svc = service(ctx)
    person, term_words, wanted_vh, schets = _asked(ctx.services, args)
    req = await svc.open(ctx.session, now=ctx.now, sender=ctx.sender, role=ctx.role, room_id=ctx.room_id,
                         event_id=ctx.event_id, person=person, term_words=term_words,
                         vraag=args.named.get("vraag") or None, vh=wanted_vh, schets=schets)
    _about(ctx, person.value)
    ref = req.ref
    doc = Doc().line(Bold(f"Aanvraag {ref}"), f" verstuurd naar {req.vh_naam} voor ",
                     person.masked, f" ({req.doelgroep}).")
    left = rules.describe_left(req.deadline, ctx.now)
    doc.line("Termijn: uiterlijk ", Bold(format_local(req.deadline)), f" ({left}).")
    mail = {None: "er gaat geen mail naar de centrale mailbox (mail is niet ingesteld)",
            True: "de mail aan de centrale mailbox staat in de outbox en gaat zo uit (zie !outbox)",
            False: "de mail aan de centrale mailbox wacht in de outbox: mail staat uit in deze installatie "
                   "(zie !outbox)"}[svc.mail_sending]
    if req.dienst is None:
        doc.line(Bold("Er staat nu niemand in het rooster"), f" van de bereikbaarheidsdienst van {req.vh_naam}" + (
                 ": de dienstruimte is gemeld dat niemand dienst heeft" if req.has_oncall_room else "")
                 + f"; {mail}. Bel het veiligheidshuis, of laat het rooster vullen met ",
                 Code(f"!dienst {req.veiligheidshuis} <@gebruiker> <van> <tot>"), ".")
    else:
        doc.line(f"De bereikbaarheidsdienst ({req.dienst}) is " + (
            "gewaarschuwd in de dienstruimte" if req.has_oncall_room else
            "niet via Matrix bereikbaar (geen dienstruimte ingesteld)") + f"; {mail}.")
    doc.line("Intrekken: ", Code(f"!aanvraag intrekken {ref}"), ". Overzicht: ", Code("!aanvragen"), ".")
    if req.direct_to is not None:  # not every reader of the room may see the house and the doelgroep
        ctx.send_elsewhere(OutgoingNote(req.direct_to, doc.build(case_data=True), key="aanvraag-details"))
        return Doc().line(f"Aanvraag {ref} voor {person.masked} is verstuurd; de details staan in uw directe "
                          "bericht van de bot.").build(case_data=True)
    return doc.build(case_data=True)


async def _cancel(ctx: Context, args: ParsedArgs) -> Reply:
    if len(args.words) != 2:
        raise UserError("Gebruik: !aanvraag intrekken <nummer>, bijvoorbeeld !aanvraag intrekken A12.")
    if ctx.role not in CANCEL_ROLES:
        raise UserError(f"Intrekken mag alleen de rol {labels(CANCEL_ROLES)}.")
    done = await service(ctx).cancel_ref(ctx.session, args.words[1], ctx.sender, ctx.role, ctx.now)
    told = [*(["de bereikbaarheidsdienst is ingelicht"] if done.oncall_told else []), *CANCELLED_MAIL[done.mail]]
    return Doc().line(f"Aanvraag {done.view.ref} is ingetrokken" + (f"; {'; '.join(told)}." if told else ".")).build()


# What the officer hears about the request's mail once it is cancelled.
CANCELLED_MAIL: dict[MailNaIntrekking, list[str]] = {
    MailNaIntrekking.GEEN: [],
    MailNaIntrekking.TEGENGEHOUDEN: ["de aanvraagmail was nog niet verzonden en gaat niet meer uit"],
    MailNaIntrekking.BERICHT: ["het veiligheidshuis krijgt een mail dat er geen advies meer nodig is"],
}


AANVRAAG = CommandSpec(
    name="aanvraag",
    summary="Vraag een veiligheidshuis om een actueel advies binnen een termijn.",
    handler=handle_aanvraag,
    ahead=ahead_aanvraag,
    roles=REQUEST_ROLES,
    args=(Arg("bsn of skn", "het BSN of SKN van de verdachte"),
          Arg("termijn", "24u, 5d, 2wd of 'volgende werkdag 13:00'", optional=True, variadic=True)),
    named=(Named("feit", "het feit in een paar woorden (verplicht)"),
           Named("voornemen", "het voorgenomen besluit (verplicht)"),
           Named("type", f"zaaktype: {', '.join(rules.ZAAKTYPEN)}"),
           Named("vraag", "wat ZSM wil weten"), Named("vh", "sleutel van het veiligheidshuis")),
    description=("Alleen voor de doelgroepen en zaaktypen die ZSM en het veiligheidshuis als prioritair hebben "
                 "afgesproken; met 'type:' (bv. type: hg) ook voor een verdachte die het veiligheidshuis niet kent. "
                 "De dienst ziet de schets en de identificatie die het veiligheidshuis mag ontvangen. "
                 "De bereikbaarheidsdienst wordt gewaarschuwd, herinnerd en zo nodig geëscaleerd; zonder advies "
                 "binnen de termijn meldt de bot dat zonder advies beslist wordt. "
                 "'!aanvraag intrekken <nummer>' trekt een aanvraag in."),
    examples=("!aanvraag 123456782 24u feit: mishandeling partner, tweede melding voornemen: voorwaardelijk sepot "
              "vraag: is er een plan van aanpak?",
              "!aanvraag 123456782 feit: bedreiging ex-partner voornemen: vs type: hg vh: utrecht",
              "!aanvraag intrekken A12"),
)


# ---------------------------------------------------------------------------------------------- !aanvragen

async def handle_aanvragen(ctx: Context, args: ParsedArgs) -> Reply:
    rows = await service(ctx).active(ctx.session)
    if not rows:
        return Doc().line("Er zijn geen open aanvragen.").build()
    items: list[list[Part]] = []
    for r in rows:
        state = (f"bevestigd door {r.acknowledged_by}" if r.state is rules.AanvraagStatus.ACKNOWLEDGED
                 else "nog niet bevestigd")
        items.append([Bold(r.ref), f" · {r.person.masked} · {r.veiligheidshuis} · ",
                      Bold(rules.describe_left(r.deadline, ctx.now)), f" (tot {format_local(r.deadline)}) · {state}"])
    reply = Doc().heading(f"Open aanvragen ({len(rows)}), meest dringend eerst").bullets(items).build(case_data=True)
    direct_to = await service(ctx).list_direct_to(ctx.session, ctx.room_id, ctx.sender)
    if direct_to is not None:
        return ctx.list_in_direct_room(direct_to, reply, key="aanvragen-details",
                                       title=f"Open aanvragen ({len(rows)})")
    return reply


AANVRAGEN = CommandSpec(
    name="aanvragen",
    summary="Toon de open aanvragen om advies, meest dringend eerst.",
    handler=handle_aanvragen,
    roles=REQUEST_ROLES | ONCALL_ROLES,
    description="Per aanvraag: nummer, persoon (gemaskeerd), veiligheidshuis, resterende tijd en of hij bevestigd is.",
    examples=("!aanvragen",),
)


# ---------------------------------------------------------------------------------------------- !ack and !advies

async def handle_ack(ctx: Context, args: ParsedArgs) -> Reply:
    req = await service(ctx).acknowledge_ref(ctx.session, args.words[0], ctx.sender, ctx.now)
    ref = req.ref
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
    if len(args.words) < 3:
        raise UserError("Er ontbreekt de code van de afdoening of de reden. Gebruik: !advies <nummer> <code of geen> "
                        "<advies met reden>, bijvoorbeeld !advies A12 vs plan van aanpak loopt.")
    text = " ".join(args.raw.split()[2:]).strip()
    req = await service(ctx).answer_ref(ctx.session, args.words[0], ctx.sender, args.words[1], text, ctx.now)
    return Doc().line(f"Advies bij aanvraag {req.ref} is doorgegeven aan ZSM en staat nu als "
                      "nieuwste advies in het register.").build()


ADVIES = CommandSpec(
    name="advies",
    summary="Geef als bereikbaarheidsdienst het advies op een aanvraag.",
    handler=handle_advies,
    roles=ONCALL_ROLES,
    args=(Arg("nummer", "het aanvraagnummer, zoals A12"),
          Arg("afdoening", "code van de geadviseerde afdoening (zoals vs, osb, pr) of 'geen'"),
          Arg("tekst", "het advies met reden", variadic=True)),
    description=("Het advies verschijnt in de ZSM-ruimte als antwoord op de aanvraag en !check toont het. De code "
                 "van de afdoening is nodig: zo ziet !besluit of de officier het advies volgt of ervan afwijkt."),
    examples=("!advies A12 vs Voorwaardelijk sepot met verplichte hulpverlening; plan van aanpak loopt sinds mei.",
              "!advies A12 geen Geen voorkeur voor een afdoening; wel graag terugkoppeling."),
)


# ---------------------------------------------------------------------------------------------- !dienst

async def handle_dienst(ctx: Context, args: ParsedArgs) -> Reply:
    if len(args.words) <= 1:
        return await _show_roster(ctx, _vh_key(ctx.services, args.words[0]) if args.words else None)
    if ctx.role not in ROSTER_EDIT_ROLES:
        raise UserError(f"Het rooster wijzigen mag alleen de rol {labels(ROSTER_EDIT_ROLES)}. !dienst toont het.")
    if len(args.words) < 4:
        raise UserError("Gebruik: !dienst <vh> <@gebruiker:server> <van> <tot> [backup: <@gebruiker:server>], "
                        "bijvoorbeeld !dienst utrecht @jan:example.nl 23-11-2026 08:00 24-11-2026 08:00.")
    vh = _vh_key(ctx.services, args.words[0])
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
    await rooster.add_shift(ctx.session, vh=vh, user=user, backup=backup, start=start, end=end, actor=ctx.sender,
                            now=ctx.now)
    await ctx.audit("dienst.gewijzigd", vh=vh, dienst=user, backup=backup, van=start.isoformat(), tot=end.isoformat())
    doc = Doc().line(f"Dienst {vh}: {user} van {format_local(start)} tot {format_local(end)}",
                     f", achterwacht {backup}." if backup else ".")
    return doc.build()


async def _show_roster(ctx: Context, vh: str | None) -> Reply:
    now = ctx.now
    rows = await rooster.upcoming(ctx.session, vh, now)
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
