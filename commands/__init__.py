"""One module per command; this table is the only place that lists them."""

from __future__ import annotations

from commands import (
    aanmelden,
    aanvraag,
    besluit,
    check,
    informeren,
    instroom,
    outbox,
    ping,
    rapport,
    vrijgave,
    werklijst,
)
from commands import help as help_command
from commands.base import CommandSpec, CommandTable

ALL_COMMANDS: tuple[CommandSpec, ...] = (
    help_command.SPEC,
    ping.SPEC,
    check.SPEC,
    *vrijgave.SPECS,
    instroom.SPEC,
    *aanvraag.SPECS,
    besluit.SPEC,
    aanmelden.SPEC,
    informeren.SPEC,
    outbox.SPEC,
    rapport.SPEC,
    werklijst.SPEC,
)


def default_table() -> CommandTable:
    return CommandTable(ALL_COMMANDS)
