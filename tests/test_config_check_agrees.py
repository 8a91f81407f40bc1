"""check-config and run agree: check-config exits non-zero exactly when run would refuse to start.

The broken configurations are collected from the suite itself: the parametrised cases of the settings, instroom and
covenant tests (read from their ``parametrize`` marks, so a case added there is checked here too) and the broken
configurations that other tests hand to ``check`` or ``Runtime`` one by one (copied below, with the test they come
from). Each runs through ``zsm-bot check-config`` and ``zsm-bot run`` in-process; run goes through its start-up
gate and, had the gate let it through, would connect to Matrix: that one call (``run_matrix``) is replaced by a
recorder, the only stand-in here, so a configuration that wrongly passes is reported instead of waiting for a
homeserver.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bot.matrix_main
from cli.main import main
from tests import test_instroom, test_settings
from tests.harness.config import VRIJGAVE_RUIMTE, strict_vh_block, write_config
from tests.security import test_covenant_profiles

# What every case starts from: a configuration run accepts (the control case proves it).
VALID: dict[str, dict[str, Any]] = {"matrix": {"password": "x", "rooms": ["!afstemming:localhost"]}}


def _marked(func: Any, names: tuple[str, ...]) -> list[tuple[Any, ...]]:
    for mark in getattr(func, "pytestmark", []):
        if mark.name == "parametrize":
            return [tuple(case) if isinstance(case, tuple) else (case,) for case in mark.args[1]]
    raise AssertionError(f"{func.__name__} has no parametrize mark ({names})")


def _cases() -> Iterator[Any]:
    for section, values, _ in _marked(test_settings.test_bad_values_name_the_key, ("section",)):
        yield pytest.param({section: values}, {}, None, id=f"settings-bad-{section}-{next(iter(values))}")
    for sections, _ in _marked(test_settings.test_unknown_keys_and_sections_are_refused, ("sections",)):
        yield pytest.param(sections, {}, None, id="settings-unknown-" + next(iter(sections)))
    for i, (sections, env, _) in enumerate(_marked(test_settings.test_check_config_stops_on_every_section, ())):
        yield pytest.param(sections, env, None, id=f"settings-check-config-{i}")
    for i, (section, _) in enumerate(_marked(test_instroom.test_bad_instroom_config, ())):
        yield pytest.param({"instroom": section}, {}, None, id=f"instroom-{i}")
    for i, (velden, _) in enumerate(_marked(test_covenant_profiles.test_bad_field_matrix_is_refused, ())):
        yield pytest.param({"permissions.velden": velden}, {}, None, id=f"velden-{i}")
    # test_settings.test_unknown_environment_variables_are_refused
    yield pytest.param({}, {"ZSM_BOT_MATRIX_ACCES_TOKEN": "x"}, None, id="env-unknown")
    # test_settings.test_unknown_role_and_bad_user
    yield pytest.param({}, {}, {"@a:localhost": "koning"}, id="users-unknown-role")
    yield pytest.param({}, {}, {"alice": "ovj"}, id="users-bad-id")
    # test_aanvraag.test_check_config_reports_aanvraag_problems (a link key that is too short)
    yield pytest.param({"aanvraag": {"link_sleutel": "kort"}}, {}, None, id="aanvraag-link-sleutel")
    # test_instroom.test_check_config_reports_registry_and_instroom_problems
    yield pytest.param({"http": {"enabled": False}, "instroom": {"token": test_instroom.TOKEN,
                                                                 "room": "!afstemming:localhost"}},
                       {}, None, id="instroom-without-http")
    # test_rapport_web.test_config_check_explains_the_rapport_section
    yield pytest.param({"rapport.tokens": {"jansen": "t" * 20}}, {}, None, id="rapport-without-http")
    # test_permissions.test_check_config_reports_rights_the_privacy_frame_forbids
    yield pytest.param({"permissions": {"check": ["ovj", "politie"]}}, {}, None, id="permissions-politie")
    yield pytest.param({"permissions": {"besluit": ["ovj", "shn"]}}, {}, None, id="permissions-shn")
    yield pytest.param({"permissions": {"vliegen": ["ovj"]}}, {}, None, id="permissions-unknown-command")
    # what check-config did not load before (issue 12): the reference files and the region run needs
    yield pytest.param({"referentie": {"afdoeningen": "ontbreekt.toml"}}, {}, None, id="afdoeningen-missing")
    yield pytest.param({"referentie": {"veiligheidshuizen": "ontbreekt.toml"}}, {}, None, id="vh-missing")
    yield pytest.param({"zsm": {"regio": "Atlantis"}}, {}, None, id="regio-unknown")
    yield pytest.param({"matrix": {"password": None, "rooms": ["!afstemming:localhost"]}}, {}, None,
                       id="no-credentials")
    yield pytest.param({"matrix": {"password": "x", "rooms": []}}, {}, None, id="no-rooms")
    yield pytest.param({"mail": {"templates": "tpl-ontbreekt"}}, {}, None, id="templates-missing")
    # a room setting outside matrix.rooms: the bot never joins it (issue 12)
    yield pytest.param({"werklijst": {"ruimte": "!elders:localhost"}}, {}, None, id="werklijst-ruimte-not-joined")
    # operator mistakes (tests/test_cli_first_run.py): a driver-less database URL, a homeserver without scheme
    yield pytest.param({"database": {"url": "postgres://zsm@db/zsm"}}, {}, None, id="database-url-postgres-scheme")
    yield pytest.param({"matrix": {"homeserver": "matrix.example.nl"}}, {}, None, id="homeserver-without-scheme")
    yield pytest.param({"referentie": {"afdoeningen": "data/afdoeningen.toml"}}, {}, None,
                       id="afdoeningen-relative-missing")


def _write(tmp_path: Path, sections: dict[str, dict[str, Any]], users: dict[str, str] | None) -> Path:
    merged: dict[str, dict[str, Any]] = {k: dict(v) for k, v in VALID.items()}
    for name, values in sections.items():
        merged.setdefault(name, {}).update(values)
    matrix = merged["matrix"]
    for key in [k for k, v in matrix.items() if v is None]:
        del matrix[key]
    return write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}", sections=merged, users=users)


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    calls: list[object] = []
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    async def recorder(settings: object, **_: object) -> int:
        calls.append(settings)
        return 0

    monkeypatch.setattr(bot.matrix_main, "run_matrix", recorder)
    for name in [n for n in os.environ if n.startswith("ZSM_BOT_")]:
        monkeypatch.delenv(name)
    yield calls
    # run sets up logging on the stderr pytest captured for that test; the next test must not write to it
    root.handlers[:] = handlers
    root.setLevel(level)


def _both(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, int, str]:
    check = main(["check-config", "--config", str(path)])
    check_err = capsys.readouterr().err
    run = main(["run", "--config", str(path)])
    run_err = capsys.readouterr().err
    return check, check_err, run, run_err


def test_the_valid_configuration_passes_both(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              started: list[object]) -> None:
    check, check_err, run, _ = _both(_write(tmp_path, {}, None), capsys)
    assert check == 0, check_err
    assert run == 0 and len(started) == 1


@pytest.mark.parametrize(("sections", "env", "users"), list(_cases()))
def test_check_config_fails_exactly_when_run_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch, started: list[object],
                                                     sections: dict[str, dict[str, Any]], env: dict[str, str],
                                                     users: dict[str, str] | None) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = _write(tmp_path, sections, users)
    check, check_err, run, run_err = _both(path, capsys)
    assert check == 2, f"check-config accepts what the suite calls broken: {sections} {env}"
    assert run == 2 and not started, f"run would start on {sections} {env}: {run_err}"
    first_check = check_err.splitlines()[0].removeprefix("fout: ").removeprefix("configuratiefout: ")
    # run's last line is the plain one (a JSON log line may come before it, once run has set up its log)
    assert run_err.strip().splitlines()[-1].removeprefix("configuratiefout: ").startswith(first_check), \
        (check_err, run_err)
    assert "Traceback" not in check_err + run_err


def test_a_strict_veiligheidshuis_without_its_release_room(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            started: list[object]) -> None:
    """test_covenant_profiles.test_check_config_reports_an_unreachable_release_room_and_a_blind_role."""
    reference = tmp_path / "vh.toml"
    shipped = Path(test_covenant_profiles.__file__).resolve().parents[2] / "config" / "veiligheidshuizen.toml"
    reference.write_text(shipped.read_text(encoding="utf-8") + strict_vh_block(), encoding="utf-8")
    path = _write(tmp_path, {"referentie": {"veiligheidshuizen": str(reference)}}, None)
    check, _, run, run_err = _both(path, capsys)
    assert check == 2 and run == 2 and not started
    assert "vrijgave_ruimte: staat niet in matrix.rooms" in run_err
    fixed = _write(tmp_path, {"referentie": {"veiligheidshuizen": str(reference)},
                              "matrix": {"password": "x", "rooms": ["!afstemming:localhost", VRIJGAVE_RUIMTE]}}, None)
    check, check_err, run, _ = _both(fixed, capsys)
    assert check == 0 and run == 0, check_err


def test_a_crypto_store_folder_that_cannot_be_made(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   started: list[object]) -> None:
    (tmp_path / "bestand").write_text("geen map", encoding="utf-8")
    store = tmp_path / "bestand" / "matrix-store"
    path = _write(tmp_path, {"matrix": {"password": "x", "rooms": ["!afstemming:localhost"],
                                        "store_path": str(store)}}, None)
    check, check_err, run, run_err = _both(path, capsys)
    assert check == 2 and run == 2 and not started
    assert f"fout: matrix.store_path: map {store} kan niet worden aangemaakt" in check_err
    assert run_err.strip().splitlines()[-1].startswith(f"configuratiefout: matrix.store_path: map {store}")
