"""``zsm-bot``: init, run, console, db upgrade, check-config, import and the other operator commands.

Every subcommand takes ``--config``; else ``ZSM_BOT_CONFIG``; else ``./zsm-bot.toml``. Problems end with one
line on stderr (and in the log when one is set up) naming the cause, and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

from bot.logs import setup_logging
from cli.failures import explain, prepare_database_path, scrub
from config.build import version
from config.reader import os_reason
from config.settings import ConfigError, Settings, load_settings, resolve_config_path
from domain.matrix_ids import USER_ID

EXIT_CONFIG = 2
CONFIG_HELP = "pad naar het TOML-bestand (anders $ZSM_BOT_CONFIG, anders ./zsm-bot.toml)"


class DutchHelp(argparse.RawDescriptionHelpFormatter):
    """argparse's own words (usage, section titles) in Dutch, like the rest of the help; descriptions and epilogs
    keep their line breaks (the import format is a table)."""

    def add_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None) -> None:
        super().add_usage(usage, actions, groups, "gebruik: " if prefix is None else prefix)


_ARGPARSE_ERRORS = (
    (re.compile(r"the following arguments are required: (.*)"), "{0} ontbreekt"),
    (re.compile(r"argument (?:<commando>|subcommand|db_command): invalid choice: '([^']*)' \(choose from (.*)\)"),
     "onbekend commando '{0}'; kies uit {1}"),
    (re.compile(r"argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)"),
     "{0}: onbekende waarde '{1}'; kies uit {2}"),
    (re.compile(r"unrecognized arguments: (.*)"), "onbekend argument: {0}"),
    (re.compile(r"argument (\S+): expected one argument"), "{0}: verwacht een waarde"),
    (re.compile(r"argument (\S+): not allowed with argument (\S+)"), "{0} en {1} gaan niet samen"),
)


class DutchParser(argparse.ArgumentParser):
    """A mistake on the command line is one Dutch line naming the fix (argparse's own is English, after the usage)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DutchHelp)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self._positionals.title = "argumenten"
        self._optionals.title = "opties"
        self.add_argument("-h", "--help", action="help", help="toon deze hulp en stop")

    def error(self, message: str) -> NoReturn:
        for pattern, dutch in _ARGPARSE_ERRORS:
            m = pattern.fullmatch(message)
            if m:
                message = dutch.format(*(g.replace("subcommand", "<commando>").replace("db_command", "<commando>")
                                         for g in m.groups()))
                break
        self.exit(EXIT_CONFIG, f"{self.prog}: {message}; zie {self.prog} --help\n")
# The settings of this invocation once loaded, so a failure line can name the database and the homeserver.
_loaded: list[Settings] = []


def _settings(args: argparse.Namespace, *, create: bool = True) -> Settings:
    """Load the configuration and make the SQLite folder (every command but check-config, which only checks that
    it could), or stop with the one line."""
    settings = load_settings(resolve_config_path(args.config))
    _loaded.append(settings)
    prepare_database_path(settings, create=create)
    return settings


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from bot.matrix_main import run_matrix
    from cli.config_check import refuse_unless_startable

    setup_logging(settings.logging.level, settings.logging.format)
    notes = refuse_unless_startable(settings)  # a problem stops here, in the log too (see main)
    if notes:
        # counted only: a note may name a user's Matrix id, which the log never holds
        logging.getLogger("zsm-bot").warning("configuratie: opmerkingen; zie zsm-bot check-config",
                                             extra={"notes": len(notes)})
    return int(asyncio.run(run_matrix(settings, one_bot_process=True)))


def cmd_console(args: argparse.Namespace) -> int:
    from bot.runtime import Runtime
    from bot.shutdown import cancel_within, stop_on_signals
    from bot.transport.console import ConsoleTransport, run_console

    settings = _settings(args)
    if not USER_ID.match(args.as_user):
        raise ConfigError(f"console --as: verwacht een Matrix-id als @ovj.jansen:example.nl, kreeg {args.as_user!r}")
    if settings.role_of(args.as_user) is None:
        known = ", ".join(sorted(settings.users)[:5]) or "geen"
        raise ConfigError(f"console --as: {args.as_user} heeft geen rol in {settings.source}; voeg hem toe onder "
                          f"[users] of kies een gebruiker die er staat ({known})")
    setup_logging(settings.logging.level if args.verbose else "WARNING", "text")  # after the checks: one line

    async def main() -> int:
        stop = asyncio.Event()
        stop_on_signals(stop)
        runtime = Runtime(settings)
        try:
            await runtime.start(ConsoleTransport(sys.stdout), http=False)
            assert runtime.dispatcher and runtime.sender
            console = asyncio.create_task(run_console(runtime.dispatcher, runtime.sender, args.as_user))
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({console, stopper}, return_when=asyncio.FIRST_COMPLETED)
            await cancel_within([console, stopper])
            return 0 if console.cancelled() else console.result()
        finally:
            await runtime.close()

    return asyncio.run(main())


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from storage.db import create_engine
    from storage.migrate import current_revision, upgrade

    settings = _settings(args)

    async def main(url: str) -> str | None:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            return await current_revision(engine)
        finally:
            await engine.dispose()

    rev = asyncio.run(main(settings.database_url))
    print(f"database bijgewerkt tot revisie {rev}")
    if settings.registry.database_url:  # the shared registry database ([registry] database_url) as well
        print(f"registerdatabase bijgewerkt tot revisie {asyncio.run(main(settings.registry.database_url))}")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    from cli.config_check import startup_findings
    from services.publiek import stored_room_notes

    settings = _settings(args, create=False)
    problems, notes = startup_findings(settings)
    try:
        notes += asyncio.run(stored_room_notes(settings.database_url, settings.matrix.rooms, settings.users,
                                               settings.velden, settings.matrix.user_id))
    except Exception as exc:
        from bot.coldstart import unreachable

        if not unreachable(exc):
            raise  # a refusal (password, unknown database) stops run as well: the one line, exit 1
        # run waits for a database that is not up yet (cold start), so this is no reason to refuse
        notes.append(f"{explain(exc, settings)}; run wacht daarop, de opgeslagen room-leden zijn niet "
                     "gecontroleerd")
    for note in notes:
        print(f"let op: {note}")
    for problem in problems:
        print(f"fout: {problem}", file=sys.stderr)
    if problems:
        return EXIT_CONFIG
    print(f"configuratie in orde: {settings.source}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from cli import audit as audit_cli

    return audit_cli.run(_settings(args), args)


def _audit_args(p: argparse.ArgumentParser) -> None:
    from cli import audit as audit_cli

    audit_cli.add_arguments(p)


def cmd_rapport(args: argparse.Namespace) -> int:
    from cli import rapport as rapport_cli

    return rapport_cli.run(_settings(args), args)


def _rapport_args(p: argparse.ArgumentParser) -> None:
    from cli import rapport as rapport_cli

    rapport_cli.add_arguments(p)


def cmd_import(args: argparse.Namespace) -> int:
    """Load markings into the built-in registry; all or nothing, with a report of every bad row."""

    from config.reference import load_veiligheidshuizen
    from domain.clock import SystemClock, local
    from integrations.registry.importer import import_file
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade

    settings = _settings(args)
    vhs = load_veiligheidshuizen(settings.veiligheidshuizen_path)
    _readable("import", Path(args.file))
    for vh in args.volledig or []:
        _known_vh("import: --volledig", vh, vhs.keys())
    setup_logging("WARNING", "text")  # after the checks: their one line is not logged a second time
    if settings.registry.adapter != "builtin":
        print(f"let op: registry.adapter = \"{settings.registry.adapter}\": de bot leest dit ingebouwde register pas "
              "met registry.adapter = \"builtin\"", file=sys.stderr)

    async def main() -> int:
        from bot.runtime import audit_key
        from storage.audit import Auditor

        # Into the shared registry database when [registry] database_url names one: imported once, found by
        # every location. Its audit record goes into that database's own trail, beside the markings it changed.
        url = settings.registry.builtin_url(settings.database_url)
        engine = create_engine(url)
        try:
            await upgrade(engine)
            now = SystemClock().now()
            result = await import_file(
                Path(args.file), session_factory(engine), vhs, now=now, today=local(now).date(),
                volledig=args.volledig or [], auditor=Auditor(audit_key(settings)),
                database_url=url,
            )
        finally:
            await engine.dispose()
        print(result.report(), file=sys.stdout if result.ok else sys.stderr)
        return 0 if result.ok else 1

    return asyncio.run(main())


IMPORT_OUTCOME = """
uitkomst:
  Exitstatus 0: geslaagd (aantallen nieuw, bijgewerkt, ongewijzigd, verwijderd); 1: geweigerd, per foute
  regel het regelnummer en de reden; 2: het bestand ontbreekt, een onbekend veiligheidshuis bij --volledig
  of een fout in de configuratie. Een bestand in Windows-1252 (Excel "CSV") wordt geweigerd; zet het om:
  iconv -f windows-1252 -t utf-8 in.csv > uit.csv
  De database wordt eerst bijgewerkt (zoals zsm-bot db upgrade); elke import staat in de audittrail.
"""


def _readable(command: str, path: Path) -> None:
    """The input file of an import, checked before the database is touched: one line naming the path."""
    if not path.exists():
        raise ConfigError(f"{command}: bestand {path} bestaat niet; controleer het pad")
    if not path.is_file():
        raise ConfigError(f"{command}: {path} is geen bestand")
    if not os.access(path, os.R_OK):
        raise ConfigError(f"{command}: bestand {path} is niet leesbaar voor deze gebruiker; controleer de rechten")


def _known_vh(what: str, vh: str, known: Iterable[str]) -> None:
    keys = sorted(known)
    if vh not in keys:
        raise ConfigError(f"{what}: veiligheidshuis {vh!r} is onbekend; kies uit {', '.join(keys)}")


def _import_args(p: argparse.ArgumentParser) -> None:
    from integrations.registry.importer import HELP

    p.description = "Laad markeringen in het ingebouwde register (registry.adapter = \"builtin\")."
    p.epilog = HELP + IMPORT_OUTCOME
    p.add_argument("file", metavar="bestand",
                   help="CSV (UTF-8, kopregel, ; of ,) of JSON lines met markeringen; zie hieronder")
    p.add_argument("--volledig", action="append", metavar="VH",
                   help="het bestand is de volledige set van dit veiligheidshuis: wat ontbreekt wordt verwijderd "
                        "(mag vaker)")


def cmd_dienst_import(args: argparse.Namespace) -> int:

    from bot.runtime import audit_key
    from config.reference import load_veiligheidshuizen
    from domain.clock import SystemClock
    from integrations.rooster_ical import parse_roster
    from services.rooster import import_roster
    from storage.audit import Auditor
    from storage.db import create_engine, session_factory
    from storage.migrate import upgrade

    settings = _settings(args)
    _known_vh("dienst-import: --vh", args.vh, load_veiligheidshuizen(settings.veiligheidshuizen_path).keys())
    _readable("dienst-import", Path(args.bestand))
    try:
        data = Path(args.bestand).read_bytes()
    except OSError as exc:
        raise ConfigError(f"dienst-import: bestand {args.bestand} is niet leesbaar ({os_reason(exc)})") from None
    try:
        shifts = parse_roster(data)
    except ConfigError as exc:  # the roster reader does not know the file's name; the operator needs it
        raise ConfigError(str(exc).replace("dienst-import: ", f"dienst-import: {args.bestand}: ", 1)) from None

    async def main() -> int:
        engine = create_engine(settings.database_url)
        try:
            await upgrade(engine)
            return await import_roster(session_factory(engine), Auditor(audit_key(settings)), args.vh, shifts,
                                       SystemClock().now(), "cli:dienst-import")
        finally:
            await engine.dispose()

    n = asyncio.run(main())
    print(f"{n} diensten ingelezen voor {args.vh}")
    return 0


DIENST_IMPORT_HELP = """\
bestandsformaat:
  Elke VEVENT is een dienst: DTSTART en DTEND (met TZID of in UTC; zonder tijdzone: Nederlandse tijd).
  De eerste Matrix-id in SUMMARY (anders DESCRIPTION) heeft dienst; een Matrix-id na 'backup' of
  'achterwacht' is de achterwacht. Voorbeeld: SUMMARY:Dienst @jan.devries:example.nl backup @p.smit:example.nl

gedrag:
  Herhalende diensten (RRULE, RDATE, EXDATE, verplaatst met RECURRENCE-ID) worden uitgevouwen in
  Nederlandse tijd, van een week terug tot een jaar vooruit; importeer het bestand af en toe opnieuw om het
  jaar mee te laten schuiven. Opnieuw importeren vervangt diensten met dezelfde UID (niets dubbel). Een
  dienst die later uit het bestand verdwijnt, blijft staan tot zijn einde. De database wordt eerst
  bijgewerkt; de import staat in de audittrail. Exitstatus 0: ingelezen; 2: bestand, --vh of configuratie fout.

voorbeeld:
  zsm-bot dienst-import --vh utrecht rooster.ics
"""


def _dienst_import_args(p: argparse.ArgumentParser) -> None:
    p.epilog = DIENST_IMPORT_HELP
    p.add_argument("--vh", required=True, help="sleutel van het veiligheidshuis (uit veiligheidshuizen.toml)")
    p.add_argument("bestand", help="iCalendar-bestand (.ics) met de diensten; zie hieronder")


def cmd_purge(args: argparse.Namespace) -> int:
    """Run the retention purge once (the bot also runs it daily)."""
    from bot.runtime import Runtime

    settings = _settings(args)
    setup_logging(settings.logging.level, settings.logging.format)  # the audit witness line after the purge

    async def main() -> dict[str, int]:
        runtime = Runtime(settings)
        try:
            await upgrade_only(runtime)
            return await runtime.purge_now()
        finally:
            await runtime.close()

    from storage.purge import REDACT_KEY

    counts = asyncio.run(main())
    to_redact = counts.pop(REDACT_KEY, 0)
    print("opgeschoond: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if to_redact:
        print(f"{to_redact} bericht(en) met zaakgegevens klaargezet voor redactie; de bot verwijdert ze uit de ruimte "
              "zodra hij draait")
    return 0


async def upgrade_only(runtime: Any) -> None:
    from storage.migrate import upgrade

    await upgrade(runtime.engine)


def _console_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--as", dest="as_user", metavar="MATRIX-ID", required=True,
                   help="de gebruiker (uit [users]) namens wie de commando's gaan; zijn rol geldt")
    p.add_argument("-v", "--verbose", action="store_true", help="log op het niveau uit de configuratie")


def _no_args(p: argparse.ArgumentParser) -> None:
    return None


SUBCOMMANDS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = [
    ("run", "start de Matrix-bot", _no_args, cmd_run),
    ("console", "voer chatcommando's uit vanaf standaardinvoer, zonder Matrix (als de gebruiker van --as)",
     _console_args, cmd_console),
    ("check-config", "controleer alles wat run laadt, zonder iets te schrijven; exit 2 als run zou weigeren",
     _no_args, cmd_check_config),
    ("audit", "controleer de auditketen of exporteer voor inzage", _audit_args, cmd_audit),
    ("purge", "verwijder wat zijn bewaartermijn voorbij is (draait ook dagelijks)", _no_args, cmd_purge),
    ("rapport", "managementcijfers als csv of json (alleen totalen, kleine aantallen als '< 5')", _rapport_args,
     cmd_rapport),
    ("import", "laad markeringen in het ingebouwde register", _import_args, cmd_import),
    ("dienst-import", "lees het rooster van de bereikbaarheidsdienst uit een iCalendar-bestand", _dienst_import_args,
     cmd_dienst_import),
]


def build_parser() -> argparse.ArgumentParser:
    parser = DutchParser(prog="zsm-bot", description=(
        "ZSM-afstemmingsbot. Elk commando leest de configuratie uit --config, anders $ZSM_BOT_CONFIG,\n"
        "anders ./zsm-bot.toml. De eerste keer: zsm-bot init, check-config, db upgrade en run.\n"
        "zsm-bot <commando> --help toont de opties van een commando."))
    parser.add_argument("--version", action="version", version=f"zsm-bot {version()}", help="toon de versie en stop")
    sub = parser.add_subparsers(dest="subcommand", required=True, title="commando's", metavar="<commando>")
    init = sub.add_parser("init", help="schrijf een start-configuratie (zsm-bot.toml) en maak de mappen aan",
                          description="Schrijf het becommentarieerde voorbeeld als DIR/zsm-bot.toml (nooit over een "
                          "bestaand\nbestand heen), maak de mappen die het noemt en zet voorbeeld-markeringen.csv "
                          "klaar.")
    init.add_argument("dir", nargs="?", default=".", help="map voor zsm-bot.toml (standaard de huidige map)")
    init.set_defaults(func=cmd_init)

    def add(name: str, helptext: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        p.add_argument("--config", metavar="PAD", help=CONFIG_HELP)
        return p

    for name, helptext, configure, func in SUBCOMMANDS:
        p = add(name, helptext)
        configure(p)
        p.set_defaults(func=func)
    db = sub.add_parser("db", help="database-onderhoud: zsm-bot db upgrade past de migraties toe")
    db_sub = db.add_subparsers(dest="db_command", required=True, title="commando's", metavar="<commando>")
    up = db_sub.add_parser("upgrade", help="pas de migraties toe (maakt een SQLite-bestand aan als het er niet is)",
                           description="Breng de database op de nieuwste revisie; run, import en dienst-import doen "
                           "dat ook zelf.")
    up.add_argument("--config", metavar="PAD", help=CONFIG_HELP)
    up.set_defaults(func=cmd_db_upgrade)
    return parser


def cmd_init(args: argparse.Namespace) -> int:
    from cli.init import write_starter

    target, folders = write_starter(Path(args.dir))
    print(f"configuratie geschreven: {target}")
    for path in folders:
        print(f"{'map' if path.is_dir() else 'voorbeeld'} aangemaakt: {path}")
    print("volgende stap: pas homeserver, user_id, rooms en users aan, zet ZSM_BOT_MATRIX_ACCESS_TOKEN en "
          "ZSM_BOT_AUDIT_KEY (een sterke sleutel: openssl rand -hex 32; bewaar hem, de auditketen hangt ervan af), "
          f"en draai: zsm-bot check-config --config {target}")
    return 0


def _log_failure(line: str, exc: BaseException, before: tuple[logging.Handler, ...]) -> None:
    """The same line in the log, when this command set one up (``run``); without handlers Python's last resort
    would print it a second time on stderr, and a handler left by an earlier call in the same process (tests, an
    embedding program) may write to a stream that is gone."""
    handlers = tuple(logging.getLogger().handlers)
    if handlers and handlers != before:
        logging.getLogger("zsm-bot").error("fatal", extra={"error": type(exc).__name__, "cause": scrub(line)})


def main(argv: list[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    _loaded.clear()
    before = tuple(logging.getLogger().handlers)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        _log_failure(str(exc), exc, before)  # first, so the plain line is the last one a person reads
        print(f"configuratiefout: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        line = explain(exc, _loaded[-1] if _loaded else None)
        _log_failure(line, exc, before)
        print(f"zsm-bot gestopt: {line}", file=sys.stderr)
        return 1
