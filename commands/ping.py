"""``!ping``: answers at once; used to check the bot is alive and by the round-trip benchmark."""

from __future__ import annotations

from commands.base import CommandSpec, Context
from commands.parsing import ParsedArgs
from domain.roles import EVERYONE
from services.reply import Reply, text


async def handle(ctx: Context, args: ParsedArgs) -> Reply:
    return text("pong")


SPEC = CommandSpec(
    name="ping",
    summary="Controleer of de bot reageert.",
    handler=handle,
    roles=EVERYONE,
    description="Antwoordt direct met 'pong'. Handig om te zien of de bot bereikbaar is.",
    examples=("!ping",),
    read_only=True,
)
