"""``zsm-bot check-config``: what loading alone cannot tell, said before the bot goes live.

Every key and value is checked by ``config.settings.load_settings`` (the same loader the runtime uses), so a bad
or unknown key stops check-config with exit code 2 and the same one line; this module adds what needs more than
one section: rights against the privacy frame, rooms, templates, the reference data.

``startup_findings`` is the ONE start-up validation: ``zsm-bot check-config`` prints it and ``zsm-bot run`` refuses
to start on any problem in it, so the two cannot disagree. It builds the runtime as ``run`` does (reference files,
catalogue, templates, registry, deadlines, report pages) without connecting to anything.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from bot.runtime import audit_key_path
from cli.failures import creatable
from commands import default_table
from config.reader import os_reason
from config.reference import load_veiligheidshuizen
from config.settings import ConfigError, Settings, sqlite_path
from domain.roles import DECIDING_ROLES, ROLES, VH_INFO_ROLES, labels
from integrations.mail.compose import check_templates

# Commands whose rights follow from the privacy frame: veiligheidshuis information only for the roles that weigh it
# (never the police), decisions only for the deciding roles.
MIN_AUDIT_KEY = 32  # characters; a generated key is 64 hex digits
SENSITIVE: dict[str, frozenset[str]] = {
    "check": VH_INFO_ROLES,
    "instroom": VH_INFO_ROLES,
    "besluit": DECIDING_ROLES,
}


def check(settings: Settings) -> tuple[list[str], list[str]]:
    problems: list[str] = []
    notes: list[str] = []
    table = default_table()
    for command in settings.permissions:
        if table.get(command) is None:
            problems.append(f"permissions.{command}: onbekend commando; bekend zijn {', '.join(table.names())}")
    m = settings.matrix
    if not m.access_token and not m.password:
        problems.append("matrix: geen access_token en geen password; zet ZSM_BOT_MATRIX_ACCESS_TOKEN of "
                        "ZSM_BOT_MATRIX_PASSWORD")
    if not m.rooms:
        problems.append("matrix.rooms is leeg: noem minstens één room waarin de bot commando's aanneemt")
    if not m.require_encryption:
        notes.append("matrix.require_encryption = false: de bot handelt ook in onversleutelde rooms")
    if settings.audit.key and len(settings.audit.key) < MIN_AUDIT_KEY:
        notes.append(f"audit.key is korter dan {MIN_AUDIT_KEY} tekens: wie hem raadt kan de auditketen herschrijven; "
                     "maak een sterke sleutel, bijvoorbeeld met: openssl rand -hex 32")
    mismatch = audit_key_mismatch(settings)
    if mismatch:
        notes.append(mismatch)
    if not settings.audit.key and audit_key_path(settings).exists():
        notes.append(f"audit.key niet gezet: de sleutel staat in {audit_key_path(settings)}; zet ZSM_BOT_AUDIT_KEY "
                     "in productie")
    witness_room = settings.audit.witness_room
    if witness_room is not None and witness_room not in m.rooms:
        notes.append(f"audit.witness_room {witness_room} staat niet in matrix.rooms; de bot moet er lid van zijn")
    werklijst_room = settings.werklijst.ruimte
    if werklijst_room is not None and werklijst_room not in m.rooms:
        problems.append(f"werklijst.ruimte: {werklijst_room} staat niet in matrix.rooms; de bot treedt daar niet toe "
                        "en kan er de werklijst niet plaatsen; voeg de room toe aan matrix.rooms of kies er een uit")
    if settings.http.enabled and settings.http.host not in ("127.0.0.1", "::1", "localhost"):
        notes.append(f"http.host = {settings.http.host}: de beheerserver luistert niet alleen op loopback")
    _check_registry_sections(settings, problems, notes)
    from services.aanvraag import config_notes

    aanvraag_problems, aanvraag_notes = config_notes(settings)
    problems.extend(aanvraag_problems)
    notes.extend(aanvraag_notes)
    from web.rapport import config_notes as rapport_notes

    rapport_problems, more_notes = rapport_notes(settings)
    problems.extend(rapport_problems)
    notes.extend(more_notes)
    mail = settings.mail
    problems.extend(check_templates(mail))
    if not mail.enabled:
        notes.append("mail.enabled = false: terugkoppeling wordt klaargezet (zie !outbox) maar niet verzonden")
    if not mail.vertrouwelijkheid:
        notes.append("mail.vertrouwelijkheid = false: mails gaan zonder geheimhoudingsverklaring")
    rights: dict[str, list[str]] = {r: [] for r in ROLES}
    for spec in table.all():
        for role in table.allowed_roles(spec, settings):
            rights[role].append(spec.name)
    substantive = {r: [c for c in cmds if c not in ("help", "ping")] for r, cmds in rights.items()}
    for user, role in sorted(settings.users.items()):
        if not substantive[role]:
            notes.append(f"users.\"{user}\": rol {labels(frozenset({role}))} heeft geen rechten buiten !help en !ping")
    check_spec = table.get("check")
    for role, fields in sorted(settings.velden.items()):
        if check_spec and role in table.allowed_roles(check_spec, settings) and fields.leeg:
            notes.append(f"permissions.velden.{role}: rol {labels(frozenset({role}))} mag !check maar ziet geen "
                         "enkel veld van een veiligheidshuis")
    try:
        vhs = load_veiligheidshuizen(settings.veiligheidshuizen_path)
    except ConfigError:
        vhs = None  # reported where the reference file is checked
    for vh in vhs.all() if vhs else []:
        if vh.profiel == "hit-no-hit" and vh.vrijgave_ruimte not in settings.matrix.rooms:
            problems.append(f"veiligheidshuizen.{vh.key}.vrijgave_ruimte: staat niet in matrix.rooms; de bot kan de "
                            "verantwoordelijke daar niet om vrijgave vragen")
    for command, expected in SENSITIVE.items():
        sensitive = table.get(command)
        if sensitive is None:
            continue
        unexpected = table.allowed_roles(sensitive, settings) - expected
        if unexpected:
            problems.append(f"permissions.{command}: geeft {labels(unexpected)} een recht dat PRIVACY.md niet toestaat "
                            f"(alleen {labels(expected)})")
    return problems, notes


def audit_key_mismatch(settings: Settings) -> str | None:
    """The usual mistake after a first run without ``ZSM_BOT_AUDIT_KEY``: the operator sets a new key, and every
    record signed with the generated one no longer verifies (``zsm-bot audit verify`` calls them altered)."""
    path = audit_key_path(settings)
    if not settings.audit.key or not path.is_file():
        return None
    try:
        generated = path.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if generated == settings.audit.key:
        return None
    return (f"audit.key verschilt van de sleutel in {path}, waarmee de bot eerder tekende; de records van toen "
            "kloppen niet met de nieuwe sleutel: zet ZSM_BOT_AUDIT_KEY op de inhoud van dat bestand")


def startup_findings(settings: Settings) -> tuple[list[str], list[str]]:
    """Problems (``run`` refuses to start) and notes (it starts, but read them), for check-config and run alike.

    Writes nothing: check-config may run in a folder the operator is still preparing, so what ``run`` would create
    (the database folder and file, the crypto store, the audit key file) is named in one note instead."""
    problems, notes = check(settings)
    problems[:0] = _what_run_loads(settings)
    created = would_create(settings)
    if created:
        notes.insert(0, "run maakt aan: " + ", ".join(created))
    return problems, notes


def refuse_unless_startable(settings: Settings) -> list[str]:
    """``run``'s gate: the first problem as the one line (ConfigError), else the notes for the log."""
    problems, notes = startup_findings(settings)
    if problems:
        more = f" (en nog {len(problems) - 1}; zie zsm-bot check-config)" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more)
    return notes


def would_create(settings: Settings) -> list[str]:
    """What ``run`` creates on its first start and is not there yet, in Dutch, with absolute paths."""
    created: list[str] = []
    database = sqlite_path(settings.database_url)
    if database is not None and not database.exists():
        if not database.parent.exists():
            created.append(f"map {database.parent}")
        created.append(f"databasebestand {database}")
    store = settings.matrix.store_path.resolve()
    if not store.exists():
        created.append(f"map {store} (crypto-opslag)")
    key_file = audit_key_path(settings)
    if not settings.audit.key and not key_file.exists():
        created.append(f"sleutelbestand {key_file} (audit.key niet gezet; zet ZSM_BOT_AUDIT_KEY in productie)")
    return created


def _what_run_loads(settings: Settings) -> list[str]:
    """Everything ``Runtime`` loads at construction, and whether the crypto store folder the Matrix transport
    creates can be made; without creating either the folder or the audit key file."""
    problems: list[str] = []
    store = settings.matrix.store_path
    problem = creatable(store)
    if problem:
        problems.append(f"matrix.store_path: map {store} kan niet worden aangemaakt of beschreven ({problem}); kies "
                        "een pad waar de bot mag schrijven")
    if not settings.audit.key:
        key_file = audit_key_path(settings)
        problem = None if key_file.exists() else creatable(key_file.parent)
        if problem:
            problems.append(f"audit.key: sleutelbestand {key_file} kan niet worden aangemaakt ({problem}); zet "
                            "ZSM_BOT_AUDIT_KEY")
        # The runtime would write the key file now; the check builds it with a stand-in key instead.
        settings = replace(settings, audit=replace(settings.audit, key="check-config"))
    from bot.runtime import Runtime

    async def build() -> None:
        runtime = Runtime(settings)
        await runtime.close()

    try:
        asyncio.run(build())
    except ConfigError as exc:
        problems.append(str(exc))
    except OSError as exc:
        problems.append(f"{exc.filename or 'bestand'}: {os_reason(exc)}; controleer het pad en de rechten")
    return problems


def _check_registry_sections(settings: Settings, problems: list[str], notes: list[str]) -> None:
    """[registry] and [instroom] (issue 3): combinations that cannot work (each section parsed at load)."""
    registry = settings.registry.http
    if registry is not None and registry.url.startswith("http://"):
        notes.append("registry.url gebruikt http:// zonder TLS; persoonsgegevens gaan dan onversleuteld over het net")
    instroom = settings.instroom
    if instroom is None:
        return
    if not settings.http.enabled:
        problems.append("instroom.token is gezet maar http.enabled = false: POST /api/instroom is dan niet bereikbaar")
    if instroom.room not in settings.matrix.rooms:
        notes.append(f"instroom.room {instroom.room} staat niet in matrix.rooms")
