"""First run from the package and the bad inputs an operator meets: one Dutch line naming what to fix, a non-zero
exit status, never a traceback. Every case runs the real ``zsm-bot`` entry point in a subprocess."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from config.reference import EXAMPLE_CONFIG, EXAMPLE_IMPORT, packaged
from config.settings import load_settings
from tests.harness.config import write_config
from tests.smtp_helpers import free_port


def zsm_bot(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("ZSM_BOT_")}
    base.update(env or {})
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, cwd=cwd, env=base)


def one_line_failure(proc: subprocess.CompletedProcess[str], expected: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert expected in lines[0], lines[0]


def test_version() -> None:
    proc = zsm_bot("--version")
    assert proc.returncode == 0
    assert proc.stdout.startswith("zsm-bot "), proc.stdout


def test_init_writes_the_example_and_its_folders_and_never_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "nieuw"
    proc = zsm_bot("init", str(target))
    assert proc.returncode == 0, proc.stderr
    config = target / "zsm-bot.toml"
    assert "[referentie]" in config.read_text(encoding="utf-8")
    assert (target / "var").is_dir() and (target / "var" / "matrix-store").is_dir()
    settings = load_settings(config, environ={})
    # the packaged reference data is the default: no path of the starter file points at a file that is not there
    assert settings.veiligheidshuizen_path is None and settings.afdoeningen_path is None
    assert settings.mail.templates is None or settings.mail.templates.is_dir()

    check = zsm_bot("check-config", "--config", str(config), env={"ZSM_BOT_MATRIX_ACCESS_TOKEN": "t"})
    assert check.returncode == 0, check.stderr
    assert "configuratie in orde" in check.stdout

    config.write_text("# mine\n", encoding="utf-8")
    again = zsm_bot("init", str(target))
    one_line_failure(again, "bestaat al en wordt niet overschreven")
    assert again.returncode == 2
    assert config.read_text(encoding="utf-8") == "# mine\n"


def test_every_command_creates_the_sqlite_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///diep/in/de/map/bot.db")
    proc = zsm_bot("db", "upgrade", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "diep" / "in" / "de" / "map" / "bot.db").is_file()


def listing(folder: Path) -> list[tuple[str, int]]:
    """Every path below ``folder`` with its size (0 for a folder): what a command may have added or changed."""
    return sorted((str(p.relative_to(folder)), p.stat().st_size if p.is_file() else 0) for p in folder.rglob("*"))


def test_check_config_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "leeg"
    empty.mkdir()
    proc = zsm_bot("check-config", cwd=empty)
    one_line_failure(proc, "configuratiebestand zsm-bot.toml bestaat niet")
    assert listing(empty) == []

    folder = tmp_path / "nieuw"
    folder.mkdir()
    (folder / "zsm-bot.toml").write_text(packaged(EXAMPLE_CONFIG).read_text("utf-8"), encoding="utf-8")
    before = listing(folder)
    proc = zsm_bot("check-config", cwd=folder, env={"ZSM_BOT_MATRIX_ACCESS_TOKEN": "t"})
    assert proc.returncode == 0, proc.stderr
    assert listing(folder) == before
    created = [line for line in proc.stdout.splitlines() if line.startswith("let op: run maakt aan: ")]
    assert len(created) == 1, proc.stdout
    for path in (folder / "var", folder / "var" / "zsm-bot.db", folder / "var" / "matrix-store",
                 folder / "var" / "audit.key"):
        assert str(path) in created[0], created[0]
    assert proc.stderr == ""  # no warning of a generated key: none was generated

    # once run's files are there, the line is gone and still nothing changes
    assert zsm_bot("init", str(tmp_path / "andere")).returncode == 0
    prepared = tmp_path / "andere"
    assert zsm_bot("db", "upgrade", cwd=prepared).returncode == 0
    before = listing(prepared)
    proc = zsm_bot("check-config", cwd=prepared,
                   env={"ZSM_BOT_MATRIX_ACCESS_TOKEN": "t", "ZSM_BOT_AUDIT_KEY": "k" * 32})
    assert proc.returncode == 0, proc.stderr
    assert "run maakt aan" not in proc.stdout
    assert listing(prepared) == before


def test_check_config_names_a_store_folder_it_could_not_create(tmp_path: Path) -> None:
    (tmp_path / "blok").write_text("geen map", encoding="utf-8")
    path = write_config(tmp_path, "sqlite+aiosqlite:///bot.db", sections={"matrix": {"store_path": "blok/store"}})
    for args in (["check-config"], ["run"]):
        proc = zsm_bot(*args, "--config", str(path), env={"ZSM_BOT_MATRIX_ACCESS_TOKEN": "t"})
        assert proc.returncode == 2, proc.stderr
        assert f"matrix.store_path: map {tmp_path / 'blok' / 'store'} kan niet worden aangemaakt" in proc.stderr
        assert "Traceback" not in proc.stderr


def test_missing_config_folder(tmp_path: Path) -> None:
    proc = zsm_bot("check-config", "--config", str(tmp_path / "bestaat-niet" / "zsm-bot.toml"))
    one_line_failure(proc, f"configuratiebestand {tmp_path / 'bestaat-niet' / 'zsm-bot.toml'} bestaat niet")


def test_database_folder_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "var").write_text("geen map", encoding="utf-8")
    path = write_config(tmp_path, "sqlite+aiosqlite:///var/bot.db")
    for args in (["db", "upgrade"], ["check-config"], ["console", "--as", "@kpc:localhost"], ["purge"]):
        proc = zsm_bot(*args, "--config", str(path))
        one_line_failure(proc, f"database.url: {tmp_path / 'var'} is een bestand, geen map")


def test_missing_reference_folder(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///bot.db",
                        sections={"referentie": {"afdoeningen": "ontbreekt/afdoeningen.toml"}})
    proc = zsm_bot("check-config", "--config", str(path))
    assert proc.returncode == 2
    assert f"fout: afdoeningen: bestand {tmp_path / 'ontbreekt' / 'afdoeningen.toml'} bestaat niet" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_read_only_database_file(tmp_path: Path) -> None:
    db = tmp_path / "bot.db"
    path = write_config(tmp_path, f"sqlite+aiosqlite:///{db}")
    assert zsm_bot("db", "upgrade", "--config", str(path)).returncode == 0
    db.chmod(0o444)
    try:
        for args in (["db", "upgrade"], ["console", "--as", "@kpc:localhost"]):
            proc = zsm_bot(*args, "--config", str(path))
            one_line_failure(proc, f"database-bestand {db} is alleen-lezen")
    finally:
        db.chmod(0o644)


def test_database_that_refuses_connections(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql+asyncpg://zsm:geheim-wachtwoord@127.0.0.1:{port}/zsm_bot"
    path = write_config(tmp_path, url)
    proc = zsm_bot("db", "upgrade", "--config", str(path))
    one_line_failure(proc, f"database postgresql+asyncpg://zsm:***@127.0.0.1:{port}/zsm_bot op 127.0.0.1:{port} is "
                           "niet bereikbaar (verbinding geweigerd); start PostgreSQL of corrigeer database.url")
    assert "geheim-wachtwoord" not in proc.stderr + proc.stdout
    assert proc.returncode == 1


def test_unknown_host_of_the_database(tmp_path: Path) -> None:
    path = write_config(tmp_path, "postgresql+asyncpg://zsm@db.invalid:5432/zsm_bot")
    proc = zsm_bot("db", "upgrade", "--config", str(path))
    one_line_failure(proc, "database postgresql+asyncpg://zsm@db.invalid:5432/zsm_bot op db.invalid:5432 is niet "
                           "bereikbaar (host onbekend)")


@pytest.mark.parametrize(("sections", "env", "expected"), [
    ({"matrix": {"sync_timout_ms": 5}}, {}, "matrix.sync_timout_ms: onbekende sleutel; bedoelde u "
                                            "matrix.sync_timeout_ms?"),
    ({}, {"ZSM_BOT_MAIL_ENABLD": "true"}, "ZSM_BOT_MAIL_ENABLD: onbekende variabele; bedoelde u ZSM_BOT_MAIL_ENABLED?"),
])
def test_unknown_key_and_unknown_variable(tmp_path: Path, sections: dict[str, dict[str, object]],
                                          env: dict[str, str], expected: str) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///bot.db", sections=sections)
    for args in (["check-config"], ["db", "upgrade"], ["run"]):
        proc = zsm_bot(*args, "--config", str(path), env=env)
        one_line_failure(proc, f"configuratiefout: {expected}")
        assert proc.returncode == 2


def test_import_format_is_documented_and_the_example_imports(tmp_path: Path) -> None:
    from integrations.registry.importer import FIELDS, REQUIRED

    docs = (Path(__file__).resolve().parents[1] / "docs" / "import.md").read_text(encoding="utf-8")
    helptext = zsm_bot("import", "--help").stdout
    for field in FIELDS:
        assert f"| `{field}` | {'yes' if field in REQUIRED else 'no'} |" in docs, field
        assert field + ("*" if field in REQUIRED else "") in helptext, field
    assert "--volledig" in helptext and "JJJJ-MM-DD" in helptext and "UTF-8" in helptext

    assert zsm_bot("init", str(tmp_path)).returncode == 0
    example = tmp_path / "voorbeeld-markeringen.csv"
    first = zsm_bot("import", str(example), "--config", str(tmp_path / "zsm-bot.toml"))
    assert first.returncode == 0, first.stderr
    assert "3 nieuw, 0 bijgewerkt, 0 ongewijzigd" in first.stdout
    again = zsm_bot("import", str(example), "--config", str(tmp_path / "zsm-bot.toml"))
    assert "0 nieuw, 0 bijgewerkt, 3 ongewijzigd, 0 verwijderd" in again.stdout


def test_the_log_line_of_a_failure_names_no_person() -> None:
    from cli.failures import scrub

    line = ('users."@ovj.jansen:example.nl": rol; mailbox vh@utrecht.example.nl; database '
            'postgresql+asyncpg://zsm:***@db:5432/zsm op db:5432 is niet bereikbaar')
    assert scrub(line) == ('users."<matrix-id>": rol; mailbox <e-mailadres>; database '
                           'postgresql+asyncpg://zsm:***@db:5432/zsm op db:5432 is niet bereikbaar')


def test_run_logs_its_failure_line_as_well(tmp_path: Path) -> None:
    port = free_port()
    path = write_config(tmp_path, "sqlite+aiosqlite:///bot.db", sections={
        "matrix": {"password": "x", "rooms": ["!afstemming:localhost"]},
        "logging": {"format": "json", "level": "INFO"},
        "referentie": {"afdoeningen": f"ontbreekt-{port}.toml"}})
    proc = zsm_bot("run", "--config", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("configuratiefout: afdoeningen: bestand "), proc.stderr
    logged = [line for line in lines if line.startswith("{") and '"fatal"' in line]
    assert len(logged) == 1 and f"ontbreekt-{port}.toml bestaat niet" in logged[0], proc.stderr


# Typical operator mistakes: each one Dutch line that names the fix, for every command that meets it.
@pytest.mark.parametrize(("url", "fixed"), [
    ("postgres://zsm:geheim@db:5432/zsm", "postgresql+asyncpg://zsm:***@db:5432/zsm"),
    ("postgresql://zsm@db/zsm", "postgresql+asyncpg://zsm@db/zsm"),
    ("sqlite:///var/bot.db", "sqlite+aiosqlite:///var/bot.db"),
])
def test_wrong_database_url_scheme(tmp_path: Path, url: str, fixed: str) -> None:
    path = write_config(tmp_path, url)
    for args in (["check-config"], ["db", "upgrade"]):
        proc = zsm_bot(*args, "--config", str(path))
        one_line_failure(proc, f"database.url: {url.split('://')[0]}:// wordt niet ondersteund; schrijf {fixed}")
        assert "geheim" not in proc.stderr
    assert not (tmp_path / "var").exists()


def test_homeserver_without_scheme(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///bot.db",
                        sections={"matrix": {"homeserver": "matrix.example.nl"}})
    for args in (["check-config"], ["run"]):
        proc = zsm_bot(*args, "--config", str(path), env={"ZSM_BOT_MATRIX_ACCESS_TOKEN": "t"})
        one_line_failure(proc, "matrix.homeserver: verwacht een URL als https://matrix.example.nl, kreeg "
                               "'matrix.example.nl' (zonder http:// of https://); schrijf https://matrix.example.nl")
        assert proc.returncode == 2


@pytest.mark.parametrize(("text", "reason"), [
    ('{"matrix": {"homeserver": "https://matrix.example.nl"}}\n', "regel 1, kolom 1: ongeldige regel"),
    ("matrix:\n  homeserver: https://matrix.example.nl\n", "regel 1, kolom 7: '=' verwacht na de sleutel"),
    ("[matrix\nhomeserver = \"https://matrix.example.nl\"\n", "regel 1, kolom 8: ']' ontbreekt"),
])
def test_config_file_that_is_not_toml(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "zsm-bot.toml"
    path.write_text(text, encoding="utf-8")
    proc = zsm_bot("check-config", "--config", str(path))
    one_line_failure(proc, f"configuratiebestand {path} is geen geldige TOML ({reason}")
    assert "zsm-bot init" in proc.stderr and proc.returncode == 2


def test_relative_path_resolved_against_the_config_folder(tmp_path: Path) -> None:
    """The operator keeps the data beside the folder they type in, and names it relative to that folder; the bot
    reads it relative to the configuration file, and says so with the path that was meant."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "afdoeningen.toml").write_bytes(packaged("afdoeningen.toml").read_bytes())
    conf = tmp_path / "conf"
    conf.mkdir()
    path = write_config(conf, "sqlite+aiosqlite:///bot.db",
                        sections={"referentie": {"afdoeningen": "data/afdoeningen.toml"},
                                  "matrix": {"rooms": ["!zsm:localhost"]}})
    proc = zsm_bot("check-config", "--config", "conf/zsm-bot.toml", cwd=tmp_path,
                   env={"ZSM_BOT_MATRIX_ACCESS_TOKEN": "t"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"fout: afdoeningen: bestand {conf / 'data' / 'afdoeningen.toml'} bestaat niet; bedoelde u "
        f"{tmp_path / 'data' / 'afdoeningen.toml'}? Een relatief pad in de configuratie geldt vanaf de map van het "
        "configuratiebestand; schrijf het pad voluit"]
    assert path.parent == conf


def test_run_without_an_access_token(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///bot.db", sections={"matrix": {"rooms": ["!zsm:localhost"]},
                                                                          "logging": {"format": "text"}})
    proc = zsm_bot("run", "--config", str(path))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # run logs the line too (its log is on stderr); the plain line is the last a person reads
    assert proc.stderr.strip().splitlines()[-1] == (
        "configuratiefout: matrix: geen access_token en geen password; zet ZSM_BOT_MATRIX_ACCESS_TOKEN of "
        "ZSM_BOT_MATRIX_PASSWORD")


def test_help_lists_every_subcommand_in_dutch() -> None:
    from cli.main import build_parser

    top = zsm_bot("--help")
    assert top.returncode == 0
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    listed = {c.dest: c.help for c in sub._choices_actions}
    assert set(listed) == set(sub.choices), "every subcommand has a one-line purpose"
    for name, purpose in listed.items():
        assert purpose and name in top.stdout, name
    names = [*sub.choices, "db upgrade"]
    # One process per subcommand, side by side: each spends its second importing, and the machine has cores.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        texts = list(pool.map(lambda name: zsm_bot(*name.split(), "--help").stdout, names))
    for name, text in zip(names, texts, strict=True):
        for english in ("usage:", "show this help", "positional arguments", "options:"):
            assert english not in text, (name, english)
        assert text.startswith(f"gebruik: zsm-bot {name}"), text


@pytest.mark.parametrize(("args", "expected"), [
    (["frob"], "zsm-bot: onbekend commando 'frob'; kies uit 'init', 'run'"),
    ([], "zsm-bot: <commando> ontbreekt; zie zsm-bot --help"),
    (["dienst-import", "rooster.ics"], "zsm-bot dienst-import: --vh ontbreekt; zie zsm-bot dienst-import --help"),
    (["run", "--bla"], "zsm-bot: onbekend argument: --bla"),
])
def test_command_line_mistakes(args: list[str], expected: str) -> None:
    proc = zsm_bot(*args)
    one_line_failure(proc, expected)
    assert proc.returncode == 2


def test_dienst_import_help_matches_the_reader_and_the_docs(tmp_path: Path) -> None:
    from integrations.rooster_ical import HORIZON_DAYS, LOOKBACK_DAYS

    text = " ".join(zsm_bot("dienst-import", "--help").stdout.split())
    docs = " ".join((Path(__file__).resolve().parents[1] / "docs" / "import.md").read_text(encoding="utf-8").split())
    assert LOOKBACK_DAYS == 7 and 365 <= HORIZON_DAYS <= 366
    assert "van een week terug tot een jaar vooruit" in text and "from a week ago to a year ahead" in docs
    for word in ("RRULE", "RDATE", "EXDATE", "RECURRENCE-ID", "UID", "SUMMARY", "DESCRIPTION", "backup",
                 "achterwacht", "TZID"):
        assert word in text and word in docs, word

    config = write_config(tmp_path, "sqlite+aiosqlite:///bot.db")
    for args, expected in (
        (["--vh", "atlantis", "rooster.ics"], "dienst-import: --vh: veiligheidshuis 'atlantis' is onbekend; kies uit "),
        (["--vh", "utrecht", str(tmp_path / "weg.ics")], f"dienst-import: bestand {tmp_path / 'weg.ics'} bestaat niet"),
    ):
        one_line_failure(zsm_bot("dienst-import", "--config", str(config), *args), expected)
    notical = tmp_path / "rooster.ics"
    notical.write_text("geen agenda\n", encoding="utf-8")
    one_line_failure(zsm_bot("dienst-import", "--config", str(config), "--vh", "utrecht", str(notical)),
                     f"dienst-import: {notical}: het bestand is geen geldig iCalendar-bestand")


def test_import_help_and_its_refusals_before_the_database(tmp_path: Path) -> None:
    text = zsm_bot("import", "--help").stdout
    assert "iconv -f windows-1252 -t utf-8" in text and "Exitstatus 0" in text
    config = write_config(tmp_path, "sqlite+aiosqlite:///bot.db")
    one_line_failure(zsm_bot("import", "--config", str(config), str(tmp_path / "weg.csv")),
                     f"import: bestand {tmp_path / 'weg.csv'} bestaat niet; controleer het pad")
    example = tmp_path / "m.csv"
    example.write_bytes(packaged(EXAMPLE_IMPORT).read_bytes())
    one_line_failure(zsm_bot("import", "--config", str(config), "--volledig", "atlantis", str(example)),
                     "import: --volledig: veiligheidshuis 'atlantis' is onbekend; kies uit ")
    assert not (tmp_path / "bot.db").exists()  # refused before the database was touched


def test_console_as_someone_without_a_role(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sqlite+aiosqlite:///bot.db", sections={"logging": {"format": "text"}})
    one_line_failure(zsm_bot("console", "--config", str(config), "--as", "@niemand:localhost"),
                     "console --as: @niemand:localhost heeft geen rol in ")
    one_line_failure(zsm_bot("console", "--config", str(config), "--as", "niemand"),
                     "console --as: verwacht een Matrix-id als @ovj.jansen:example.nl, kreeg 'niemand'")


def test_check_config_with_a_database_that_is_not_up_yet(tmp_path: Path) -> None:
    """run waits for a database that refuses connections (cold start), so check-config does not call that a
    reason to refuse; it says it in a note."""
    port = free_port()
    path = write_config(tmp_path, f"postgresql+asyncpg://zsm:geheim@127.0.0.1:{port}/zsm",
                        sections={"matrix": {"rooms": ["!zsm:localhost"]}})
    proc = zsm_bot("check-config", "--config", str(path), env={"ZSM_BOT_MATRIX_ACCESS_TOKEN": "t"})
    assert proc.returncode == 0, proc.stderr
    assert (f"let op: database postgresql+asyncpg://zsm:***@127.0.0.1:{port}/zsm op 127.0.0.1:{port} is niet "
            "bereikbaar (verbinding geweigerd)") in proc.stdout
    assert "geheim" not in proc.stdout + proc.stderr


def test_a_new_audit_key_after_a_run_with_the_generated_one(tmp_path: Path) -> None:
    """The first run without ZSM_BOT_AUDIT_KEY signs with var/audit.key; an operator who then sets a new key is
    told why the old records no longer verify, and what to set instead."""
    assert zsm_bot("init", str(tmp_path)).returncode == 0
    example = tmp_path / "voorbeeld-markeringen.csv"
    assert zsm_bot("import", str(example), cwd=tmp_path).returncode == 0  # signed with the generated key
    key_file = tmp_path / "var" / "audit.key"
    assert key_file.is_file()
    new_key = {"ZSM_BOT_AUDIT_KEY": "n" * 32, "ZSM_BOT_MATRIX_ACCESS_TOKEN": "t"}
    verify = zsm_bot("audit", "verify", cwd=tmp_path, env=new_key)
    assert verify.returncode == 1
    assert verify.stderr.strip().splitlines()[-1] == (
        f"let op: audit.key verschilt van de sleutel in {key_file}, waarmee de bot eerder tekende; de records van "
        "toen kloppen niet met de nieuwe sleutel: zet ZSM_BOT_AUDIT_KEY op de inhoud van dat bestand")
    check = zsm_bot("check-config", cwd=tmp_path, env=new_key)
    assert f"let op: audit.key verschilt van de sleutel in {key_file}" in check.stdout
    same = {"ZSM_BOT_AUDIT_KEY": key_file.read_text(encoding="utf-8").strip(), "ZSM_BOT_MATRIX_ACCESS_TOKEN": "t"}
    assert zsm_bot("audit", "verify", cwd=tmp_path, env=same).returncode == 0
    assert "audit.key verschilt" not in zsm_bot("check-config", cwd=tmp_path, env=same).stdout


def test_init_into_a_file_or_below_one(tmp_path: Path) -> None:
    blocker = tmp_path / "bestand"
    blocker.write_text("geen map", encoding="utf-8")
    one_line_failure(zsm_bot("init", str(blocker)), f"init: {blocker} is een bestand, geen map")
    one_line_failure(zsm_bot("init", str(blocker / "sub")),
                     f"init: kan {blocker / 'sub' / 'zsm-bot.toml'} niet schrijven (een deel van het pad is geen map)")


def test_the_reasons_of_the_operating_system_are_dutch() -> None:
    import errno

    from config.reader import os_reason

    assert os_reason(PermissionError(errno.EACCES, "Permission denied")) == "geen toegang"
    assert os_reason(OSError(errno.EROFS, "Read-only file system")) == "alleen-lezen bestandssysteem"
    assert os_reason(OSError(errno.ENOSPC, "No space left on device")) == "schijf vol"
    assert os_reason(OSError(errno.EBADF, "Bad file descriptor")) == "Bad file descriptor"  # rare: as the OS says


def test_help_of_a_command_does_not_call_a_required_part_optional(tmp_path: Path) -> None:
    config = write_config(tmp_path, "sqlite+aiosqlite:///bot.db")
    proc = subprocess.run([sys.executable, "-m", "cli", "console", "--config", str(config), "--as", "@ovj:localhost"],
                          input="!help aanvraag\n!help besluit\n", capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if not k.startswith("ZSM_BOT_")})
    assert proc.returncode == 0, proc.stderr
    assert "feit: het feit in een paar woorden (verplicht)\n" in proc.stdout, proc.stdout
    assert "(verplicht) (optioneel)" not in proc.stdout
    assert "motivering: verplicht als het besluit afwijkt van een actueel advies\n" in proc.stdout
    assert "vraag: wat ZSM wil weten (optioneel)" in proc.stdout


def test_config_that_is_a_folder(tmp_path: Path) -> None:
    one_line_failure(zsm_bot("check-config", "--config", str(tmp_path)),
                     f"configuratiebestand {tmp_path} is een map; geef het bestand: --config "
                     f"{tmp_path / 'zsm-bot.toml'}")


def test_a_weak_audit_key_is_noted(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///bot.db", sections={"matrix": {"rooms": ["!zsm:localhost"]}})
    env = {"ZSM_BOT_MATRIX_ACCESS_TOKEN": "t"}
    weak = zsm_bot("check-config", "--config", str(path), env={**env, "ZSM_BOT_AUDIT_KEY": "change-me"})
    assert weak.returncode == 0, weak.stderr
    assert "let op: audit.key is korter dan 32 tekens" in weak.stdout and "openssl rand -hex 32" in weak.stdout
    strong = zsm_bot("check-config", "--config", str(path), env={**env, "ZSM_BOT_AUDIT_KEY": "a" * 64})
    assert "audit.key is korter" not in strong.stdout
