"""``!instroom <id> [<id> ...]``: check a batch of incoming suspects and post one compact summary.

Ids may be separated by spaces, commas or new lines (pasted from a list). Every id is checked first; a bad
one rejects the batch with its position, so nobody is silently skipped.
"""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from commands.base import Arg, CommandSpec, Context, Named
from commands.check import lookup_facts, parse_zaak, require_vh_role, unavailable_reply
from commands.parsing import ParsedArgs
from commands.reply import Reply
from commands.vh_view import BatchItem, Zicht, compose_batch, signal_fields
from domain.clock import local
from domain.errors import UserError
from domain.identifiers import InvalidIdentifier, PersonId, parse_person_id
from domain.roles import VH_INFO_ROLES
from integrations.registry.base import Registry, RegistryUnavailable
from storage.statistiek_models import record_facts

MAX_BATCH = 50
_SPLIT = re.compile(r"[\s,;]+")


def split_ids(words: tuple[str, ...] | list[str]) -> list[str]:
    return [w for word in words for w in _SPLIT.split(word) if w]


def parse_batch(raw: list[str], allowed: frozenset[str]) -> tuple[list[PersonId], list[tuple[int, str]]]:
    """Parsed ids (duplicates dropped, order kept) and the problems as (1-based position, Dutch reason)."""
    people: list[PersonId] = []
    problems: list[tuple[int, str]] = []
    for i, word in enumerate(raw, start=1):
        try:
            p = parse_person_id(word, allowed)
        except InvalidIdentifier as exc:
            problems.append((i, str(exc)))
            continue
        if p not in people:
            people.append(p)
    return people, problems


async def lookup_all(registry: Registry, people: list[PersonId], session: AsyncSession | None = None
                     ) -> list[BatchItem]:
    return [BatchItem(p, await registry.lookup(p, session=session)) for p in people]


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    require_vh_role(ctx, "instroom")
    cfg = ctx.services.settings.check
    zaak = parse_zaak(args, cfg) if args.named.get("zaak") else None
    raw = split_ids(args.words)
    if not raw:
        raise UserError("Geef minstens één BSN of SKN. Gebruik: !instroom <id> [<id> ...].")
    if len(raw) > MAX_BATCH:
        raise UserError(f"Te veel nummers ({len(raw)}); maximaal {MAX_BATCH} per keer. Splits de lijst.")
    people, problems = parse_batch(raw, cfg.identificatie)
    if problems:
        listed = "; ".join(f"nr. {i}: {reason}" for i, reason in problems)
        raise UserError(f"Niets gecontroleerd: {listed} Verbeter of laat die weg en stuur !instroom opnieuw.")
    registry = ctx.services.registry
    try:
        items = await lookup_all(registry, people, ctx.session)
    except RegistryUnavailable:
        await ctx.audit("register.raadpleging", via="instroom", uitkomst="register onbereikbaar",
                        aantal=len(people), bron=registry.name)
        return unavailable_reply(registry.name)
    zicht = Zicht(role_fields=ctx.services.settings.velden.get(ctx.role, frozenset()),
                  regio=ctx.services.settings.regio)
    vhs = ctx.services.veiligheidshuizen
    for item in items:
        await ctx.audit(
            "register.raadpleging", person=item.person.value, soort=item.person.kind, zaak=zaak, via="instroom",
            uitkomst="hit" if item.markeringen else "no-hit", bron=registry.name,
            veiligheidshuizen=sorted({m.veiligheidshuis for m in item.markeringen}),
            velden=signal_fields([item], vhs, zicht),
        )
    await record_facts(ctx.session, [f for item in items for f in lookup_facts(list(item.markeringen), ctx)])
    return compose_batch(items, today=local(ctx.now).date(), veiligheidshuizen=vhs, system=registry.name,
                         zicht=zicht)


SPEC = CommandSpec(
    name="instroom",
    summary="Controleer een reeks binnengekomen verdachten in één keer; één samenvatting.",
    handler=handle,
    roles=VH_INFO_ROLES,
    args=(Arg("id", "BSN's of SKN's, gescheiden door spaties, komma's of nieuwe regels", variadic=True),),
    named=(Named("zaak", "gezamenlijk doel van de raadpleging (optioneel)"),),
    description=(f"Toont wie bekend is, bij welk veiligheidshuis en hoe actueel het advies is (maximaal "
                 f"{MAX_BATCH} nummers). Details per persoon met !check."),
    examples=("!instroom 123456782 111222333", "!instroom\n123456782\n111222333"),
)
