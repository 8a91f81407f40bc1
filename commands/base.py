"""Commands as declarations: name, arguments, roles and Dutch help, plus one async handler.

The dispatcher (``bot.dispatcher``) reads these declarations to check roles and argument counts and to
generate ``!help``; a command module only says what it needs and does its one job. Nothing here knows about
Matrix, so the console backend runs the very same commands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from commands.parsing import ParsedArgs
from domain.clock import Clock
from services.base import Caller, Tx
from services.reply import Doc, Reply

if TYPE_CHECKING:
    from config.settings import Settings
    from domain.veiligheidshuizen import Veiligheidshuizen
    from integrations.registry import Registry
    from services.aanmelden import AanmeldService
    from services.aanvraag import AanvraagService
    from services.besluit import BesluitService
    from services.check import CheckService
    from services.informeren import InformerenService
    from services.instroom import InstroomService
    from services.lookahead import Ahead
    from services.mail_outbox import OutboxService
    from services.rapport import RapportService
    from services.vrijgave import VrijgaveService
    from services.werklijst import WerklijstService
    from storage.audit import Auditor


@dataclass(frozen=True)
class Arg:
    name: str
    help: str
    optional: bool = False
    variadic: bool = False


@dataclass(frozen=True)
class Named:
    """A ``sleutel: tekst`` part of a command."""

    key: str
    help: str
    required: bool = False


@dataclass
class Services:
    """What handlers may use: one service per use case, built with its dependencies by ``bot.runtime``."""

    settings: Settings
    auditor: Auditor
    clock: Clock
    table: CommandTable
    veiligheidshuizen: Veiligheidshuizen
    registry: Registry
    check: CheckService
    vrijgave: VrijgaveService
    instroom: InstroomService
    rapport: RapportService
    aanvraag: AanvraagService
    besluit: BesluitService
    aanmelden: AanmeldService
    informeren: InformerenService
    outbox: OutboxService
    werklijst: WerklijstService


@dataclass(frozen=True)
class OutgoingNote:
    """A message a command wants sent to another room (for example the on-call room)."""

    room_id: str
    reply: Reply
    mentions: tuple[str, ...] = ()
    key: str = ""


@dataclass
class Context:
    """What a handler gets. ``session`` is the command's one transaction: all database work of a handler goes
    through it (registry lookups included, ``lookup(..., session=ctx.session)``), so effects, inbox row and reply
    commit together. Opening a second session inside a handler would wait on the first's SQLite write lock."""

    sender: str
    role: str
    room_id: str
    event_id: str
    now: datetime
    session: Tx
    services: Services
    notes: list[OutgoingNote] = field(default_factory=list)
    # Keyed hashes of the persons this command audited, in order: the dispatcher stores the first on the reply
    # row so the bot's messages about a person can be found again (sepot 01 redaction).
    subjects: list[str] = field(default_factory=list)
    # A read-only command (``CommandSpec.read_only``) runs in a reader transaction that cannot write: its audit
    # records wait here and the dispatcher writes them with the inbox row and the reply, in one short commit.
    deferred_audit: list[dict[str, Any]] | None = None

    async def audit(self, kind: str, *, person: str | None = None, subject: str | None = None,
                    **details: Any) -> None:
        """``person`` is a clear identifier (hashed here); ``subject`` an already keyed hash, for acts that know
        the person only by hash (a release answered by the veiligheidshuis), so the export still finds them."""
        if person:
            subject = self.services.auditor.subject_of(person)
        if subject and subject not in self.subjects:
            self.subjects.append(subject)
        record: dict[str, Any] = {"kind": kind, "at": self.now, "actor": self.sender, "role": self.role,
                                  "subject": subject, "details": {"event": self.event_id, **details}}
        if self.deferred_audit is not None:
            self.deferred_audit.append(record)
            return
        await self.services.auditor.record(self.session, **record)

    def caller(self) -> Caller:
        """This command as a service sees it; audit records a service writes land in ``subjects`` as well."""
        return Caller(self.sender, self.role, self.room_id, self.event_id, self.now, self.audit)

    def send_elsewhere(self, note: OutgoingNote) -> None:
        self.notes.append(note)

    def list_in_direct_room(self, direct_to: str, listing: Reply, *, key: str, title: str) -> Reply:
        """A listing not every reader of the room may see: it goes to the asker's direct room, and the room gets
        only the title with where the list is."""
        self.send_elsewhere(OutgoingNote(direct_to, listing, key=key))
        return Doc().line(f"{title}: de lijst staat in uw directe bericht van de bot.").build()


Handler = Callable[[Context, ParsedArgs], Awaitable[Reply]]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    summary: str
    handler: Handler
    roles: frozenset[str]
    args: tuple[Arg, ...] = ()
    named: tuple[Named, ...] = ()
    description: str = ""
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    # Whether the handler only reads (for these arguments): then it runs in a reader transaction that neither
    # holds nor waits for the write lock (a year's !rapport does not stall a !check), and only its inbox row,
    # audit records and reply are written, afterwards, in one short write transaction.
    read_only: bool | Callable[[ParsedArgs], bool] = False
    # For a command that looks persons up: ask an outside registry before the command's transaction begins
    # (``services.lookahead``), so its answer time holds no write lock. Called with the services, the role and
    # the arguments; a ``UserError`` (the command's own preconditions do not hold) means nobody is asked.
    ahead: Callable[[Services, str, ParsedArgs], Awaitable[Ahead]] | None = None
    # Whether the handler, as a rule, writes only what is written at commit (audit records, facts, arrivals):
    # then on PostgreSQL it runs without a transaction and everything it writes, reply included, goes in the
    # commit's one statement (``storage.audit.one_statement_sessions``), two round trips fewer than BEGIN and
    # COMMIT and one fewer for the reply. When it does write before (a room's memory of what it was shown grows, a
    # note to another room), nothing has been written and it runs again in a transaction.
    one_statement: bool = False

    def reads_only(self, args: ParsedArgs) -> bool:
        return self.read_only(args) if callable(self.read_only) else self.read_only

    @property
    def usage(self) -> str:
        parts = [f"!{self.name}"]
        for a in self.args:
            token = f"<{a.name}>" + (" ..." if a.variadic else "")
            parts.append(f"[{token}]" if a.optional else token)
        for n in self.named:
            token = f"{n.key}: <{n.key}>"
            parts.append(token if n.required else f"[{token}]")
        return " ".join(parts)

    @property
    def keywords(self) -> frozenset[str]:
        return frozenset(n.key for n in self.named)

    def check_arity(self, args: ParsedArgs) -> str | None:
        """A Dutch complaint when the words do not fit the declaration, else None."""
        required = [a for a in self.args if not a.optional]
        variadic = any(a.variadic for a in self.args)
        if len(args.words) < len(required):
            missing = required[len(args.words)]
            return f"Er ontbreekt <{missing.name}> ({missing.help})."
        if not variadic and len(args.words) > len(self.args):
            extra = " ".join(args.words[len(self.args) :])
            return f"Te veel woorden: '{extra}' hoort niet bij dit commando."
        for n in self.named:
            if n.required and not args.named.get(n.key):
                return f"Er ontbreekt '{n.key}: ...' ({n.help})."
        return None


class CommandTable:
    """The one list of commands; help, dispatch and check-config all read it."""

    def __init__(self, specs: Iterable[CommandSpec]) -> None:
        self._specs: dict[str, CommandSpec] = {}
        self._aliases: dict[str, str] = {}
        for spec in specs:
            if spec.name in self._specs or spec.name in self._aliases:
                raise ValueError(f"duplicate command {spec.name}")
            self._specs[spec.name] = spec
            for alias in spec.aliases:
                self._aliases[alias] = spec.name

    def get(self, name: str) -> CommandSpec | None:
        return self._specs.get(self._aliases.get(name, name))

    def names(self) -> list[str]:
        return list(self._specs)

    def all(self) -> list[CommandSpec]:
        return list(self._specs.values())

    def allowed_roles(self, spec: CommandSpec, settings: Settings) -> frozenset[str]:
        """The configuration's permission matrix wins over the command's default roles."""
        return settings.permissions.get(spec.name, spec.roles)
