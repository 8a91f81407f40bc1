"""``!besluit``: the chat adapter of the decision use case (``services.besluit``).

Parses the person, the afdoening, the options and ``zaak:``/``motivering:``, calls the service in the command's
transaction, and renders the Dutch reply from what it returns.
"""

from __future__ import annotations

from commands.base import Arg, CommandSpec, Context, Named, OutgoingNote, Services
from commands.parsing import ParsedArgs
from domain.afwijking import Verhouding
from domain.errors import UserError
from domain.identifiers import InvalidIdentifier, PersonId, parse_person_id
from domain.roles import DECIDING_ROLES
from domain.suggest import nearest
from domain.zaak import parse_zaak
from services.besluit import BesluitIngetrokken, BesluitService, BesluitVastgelegd, BesluitVraag, ZaakVerwijderd
from services.lookahead import Ahead
from services.mail_outbox import LABELS as MAIL_KINDS
from services.reply import Bold, Code, Doc, Part, Reply

RECLASSERING = ("reclassering", "recl", "+r")
MONDELING = ("mondeling", "mond", "+m")
UNDO = ("ongedaan", "terug", "intrekken")


def service(ctx: Context) -> BesluitService:
    return ctx.services.besluit


def person_of(typed: str) -> PersonId:
    try:
        return parse_person_id(typed)
    except InvalidIdentifier as exc:
        raise UserError(str(exc)) from None


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


def zaak_of(args: ParsedArgs) -> str:
    """The one zaak rule (``domain.zaak``): too long is refused, never cut; none given is the empty case key."""
    return parse_zaak(args.named.get("zaak")) or ""


def vraag_of(svc: BesluitService, args: ParsedArgs) -> BesluitVraag:
    """The decision as typed; refused in Dutch when any part of it does not hold."""
    if len(args.words) < 2:
        raise UserError("Er ontbreekt <afdoening>. Voorbeeld: !besluit 123456782 osb")
    person = person_of(args.words[0])
    afd = svc.afdoening(args.words[1])
    reclassering, mondeling = flags_of(args.words[2:])
    zaak = zaak_of(args)
    motivering = args.named.get("motivering", "").strip() or None
    if "motivering" in args.named and not motivering:
        raise UserError("'motivering:' is leeg. Schrijf de reden erachter, bijvoorbeeld: motivering: licht feit.")
    return BesluitVraag(person, afd, reclassering, mondeling, zaak, motivering)


async def ahead(services: Services, role: str, args: ParsedArgs) -> Ahead:
    """An outside registry asked before the transaction for a decision as typed (``services.lookahead``); an undo
    looks nobody up."""
    if args.words[0].lower() in UNDO:
        return {}
    return await services.besluit.ahead(vraag_of(services.besluit, args))


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    if args.words[0].lower() in UNDO:
        return await undo(ctx, args)
    svc = service(ctx)
    vraag = vraag_of(svc, args)
    person = vraag.person
    result = await svc.decide(ctx.session, ctx.caller(), vraag)
    if isinstance(result, ZaakVerwijderd):
        return render_removed(result)
    if result.direct_to is not None:
        ctx.send_elsewhere(OutgoingNote(result.direct_to, render_decided(result), key="besluit-details"))
        return Doc().line(f"Besluit voor {person.masked} vastgelegd; de bevestiging staat in uw directe bericht van "
                          "de bot.").build(case_data=True)
    return render_decided(result)


def render_decided(r: BesluitVastgelegd) -> Reply:
    v = r.vraag
    doc = Doc()
    doc.line(Bold("Besluit vastgelegd"), f" voor {v.person.masked}: ", v.afdoening.label,
             f" (zaak {v.zaak})" if v.zaak else "", ".")
    if r.vervangt:
        doc.line("Dit vervangt het eerdere besluit" + (f"; {r.vervallen} nog niet verzonden mail(s) vervallen."
                                                       if r.vervallen else "."))
    if r.verhouding is Verhouding.GEVOLGD:
        doc.line("Advies van het veiligheidshuis: gevolgd.")
    elif r.verhouding is Verhouding.AFGEWEKEN:
        doc.line("Afgeweken van het advies van het veiligheidshuis; motivering: ", v.motivering or "", ".")
    elif r.verhouding is Verhouding.VRIJGESTELD:
        doc.line("Het advies hoeft hier niet gevolgd te worden (technisch sepot of selectiebeslissing bij een "
                 "minderjarige).")
    if v.reclassering:
        doc.line("Reclassering is om een rapport gevraagd.")
    doc.line("Terugkoppeling: ", r.uitleg, ".")
    if r.mondeling_aan:
        doc.line("Mondeling teruggekoppeld aan: ", ", ".join(r.mondeling_aan), "; er gaat geen mail.")
    elif r.mails:
        refs: list[list[Part]] = []
        for m in r.mails:
            item: list[Part] = [Code(m.ref), f" {'CORRECTIE ' if m.correctie else ''}aan {m.vh_naam}"]
            if m.concept:
                item += [" (concept: strikt profiel; verzenden na !outbox bevestig ", Code(m.ref),
                         " weging: <afweging>)"]
            refs.append(item)
        doc.line(f"Mail klaargezet (ongedaan maken kan binnen {r.herroep_seconden} s zolang niet verzonden):")
        doc.bullets(refs)
    if r.zonder_mailbox:
        doc.line("Let op: geen mailbox bekend voor ", ", ".join(r.zonder_mailbox), "; koppel mondeling terug.")
    return doc.build(case_data=True)


def render_removed(r: ZaakVerwijderd) -> Reply:
    # No identifier, not even masked: after a sepot 01 nothing in the rooms may point to the person.
    doc = Doc().line(Bold("Technisch sepot 01"), " vastgelegd: geen terugkoppeling.")
    doc.line(f"Verwijderd: {r.besluiten} eerdere vastlegging(en) en {r.mails} mail(s) over deze zaak, en wat de bot "
             "verder over de persoon bewaarde (aanvragen om advies, vrijgaven, aanmeldingen)"
             + (f"; {r.berichten} eerder bericht(en) van de bot over de persoon worden uit de rooms verwijderd "
                "(ook uit directe berichten en de room van de bereikbaarheidsdienst)." if r.berichten else "."))
    if r.al_verzonden:
        houses = ", ".join(f"{vh} ({', '.join(MAIL_KINDS.get(k, k) for k in kinds)})" for vh, kinds in r.al_verzonden)
        doc.line(f"Let op: er ging al mail over de persoon naar {houses}. Vraag "
                 + ("dat veiligheidshuis" if len(r.al_verzonden) == 1 else "die veiligheidshuizen")
                 + " de gegevens te verwijderen.")
    return doc.build()


async def undo(ctx: Context, args: ParsedArgs) -> Reply:
    if len(args.words) != 2:
        raise UserError("Ongedaan maken: !besluit ongedaan <BSN of SKN> [zaak: <nummer>]")
    person = person_of(args.words[1])
    result: BesluitIngetrokken = await service(ctx).undo(ctx.session, ctx.caller(), person, zaak_of(args))
    return Doc().line(Bold("Besluit ongedaan gemaakt"), f" voor {result.person.masked}; {result.mails} mail(s) gaan "
                      "niet meer.").build(case_data=True)


SPEC = CommandSpec(
    name="besluit",
    summary="Leg de afdoening vast en stuur automatisch de terugkoppeling aan het veiligheidshuis.",
    handler=handle,
    ahead=ahead,
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
