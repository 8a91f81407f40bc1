"""Configuration: every wrong value stops the bot with one line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import ConfigError, load_settings, resolve_config_path
from tests.harness.config import write_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config" / "zsm-bot.example.toml"


def test_example_config_loads() -> None:
    s = load_settings(EXAMPLE, environ={})
    assert s.matrix.require_encryption and s.users["@ovj.jansen:example.nl"] == "ovj"


def test_env_overrides_secrets(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db")
    s = load_settings(path, environ={"ZSM_BOT_MATRIX_ACCESS_TOKEN": "tok", "ZSM_BOT_MATRIX_SYNC_TIMEOUT_MS": "500",
                                     "ZSM_BOT_MATRIX_REQUIRE_ENCRYPTION": "ja"})
    assert s.matrix.access_token == "tok" and s.matrix.sync_timeout_ms == 500 and s.matrix.require_encryption


@pytest.mark.parametrize(
    ("section", "values", "expected"),
    [
        ("matrix", {"homeserver": "matrix.example.nl"}, "matrix.homeserver: verwacht een URL"),
        ("matrix", {"user_id": "zsm-bot"}, "matrix.user_id: verwacht een Matrix-id"),
        ("matrix", {"rooms": ["#alias:x"]}, "matrix.rooms[0]: verwacht een room-id"),
        ("matrix", {"sync_timeout_ms": "lang"}, "matrix.sync_timeout_ms: verwacht een geheel getal"),
        ("matrix", {"require_encryption": "yes"}, "matrix.require_encryption: verwacht true of false"),
        ("database", {"url": "mysql://x"}, "database.url: verwacht sqlite+aiosqlite"),
        ("logging", {"level": "LOUD"}, "logging.level: verwacht een van DEBUG"),
        ("http", {"port": 70000}, "http.port: verwacht hoogstens 65535"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, section: str, values: dict[str, object], expected: str) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", sections={section: values})
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


def test_unknown_role_and_bad_user(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", users={"@a:localhost": "koning"})
    with pytest.raises(ConfigError, match="onbekende rol 'koning'"):
        load_settings(path, environ={})
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", users={"alice": "ovj"})
    with pytest.raises(ConfigError, match="geen Matrix-id"):
        load_settings(path, environ={})


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="bestaat niet"):
        load_settings(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[matrix\n")
    with pytest.raises(ConfigError, match="geen geldige TOML"):
        load_settings(bad)


def test_config_path_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ZSM_BOT_CONFIG", raising=False)
    assert resolve_config_path(None) == Path("zsm-bot.toml")
    monkeypatch.setenv("ZSM_BOT_CONFIG", "/etc/x.toml")
    assert resolve_config_path(None) == Path("/etc/x.toml")
    assert resolve_config_path("a.toml") == Path("a.toml")


def test_cli_reports_config_error_in_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", sections={"matrix": {"homeserver": "nope"}})
    for args in (["check-config"], ["db", "upgrade"], ["console", "--as", "@ovj:localhost"], ["run"]):
        proc = subprocess.run([sys.executable, "-m", "cli", *args, "--config", str(path)],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, (args, proc.stderr)
        assert proc.stderr.strip().startswith("configuratiefout: matrix.homeserver"), proc.stderr
        assert "Traceback" not in proc.stderr


def test_console_cli_end_to_end(tmp_path: Path) -> None:
    path = write_config(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    proc = subprocess.run([sys.executable, "-m", "cli", "console", "--as", "@kpc:localhost", "--config", str(path)],
                          input="!ping\n!onzin\n", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "pong" and lines[1].startswith("Onbekend commando '!onzin'")
    proc = subprocess.run([sys.executable, "-m", "cli", "db", "upgrade", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "database bijgewerkt tot revisie" in proc.stdout


# --- Every key is known: a typo is refused with the nearest known key, never silently left at its default --------

@pytest.mark.parametrize(("sections", "expected"), [
    ({"matrix": {"sync_timout_ms": 500}},
     "matrix.sync_timout_ms: onbekende sleutel; bedoelde u matrix.sync_timeout_ms?"),
    ({"database": {"uri": "x"}}, "database.uri: onbekende sleutel; bedoelde u database.url?"),
    ({"http": {"enable": True}}, "http.enable: onbekende sleutel; bedoelde u http.enabled?"),
    ({"logging": {"levl": "INFO"}}, "logging.levl: onbekende sleutel; bedoelde u logging.level?"),
    ({"audit": {"sleutel": "x"}}, "audit.sleutel: onbekende sleutel; bekend zijn audit.key"),
    ({"zsm": {"region": "Oost"}}, "zsm.region: onbekende sleutel; bedoelde u zsm.regio?"),
    ({"referentie": {"afdoening": "a.toml"}},
     "referentie.afdoening: onbekende sleutel; bedoelde u referentie.afdoeningen?"),
    ({"check": {"zaak_verplict": True}}, "check.zaak_verplict: onbekende sleutel; bedoelde u check.zaak_verplicht?"),
    ({"registry": {"adaptor": "builtin"}}, "registry.adaptor: onbekende sleutel; bedoelde u registry.adapter?"),
    ({"instroom": {"max_batc": 5}}, "instroom.max_batc: onbekende sleutel; bedoelde u instroom.max_batch?"),
    ({"rapport": {"sessie_uur": 8}}, "rapport.sessie_uur: onbekende sleutel; bedoelde u rapport.sessie_uren?"),
    ({"aanvraag": {"termijnen": "24u"}}, "aanvraag.termijnen: onbekende sleutel; bedoelde u aanvraag.termijn?"),
    ({"aanvraag": {"vh.utrecht.rom": "!r:localhost"}},
     "aanvraag.vh.utrecht.rom: onbekende sleutel; bedoelde u aanvraag.vh.utrecht.room?"),
    ({"mail": {"hots": "127.0.0.1"}}, "mail.hots: onbekende sleutel; bedoelde u mail.host?"),
    ({"privacy": {"vrijgave_dag": 7}}, "privacy.vrijgave_dag: onbekende sleutel; bedoelde u privacy.vrijgave_dagen?"),
    ({"privacy.bewaren": {"inbx": 3}}, "privacy.bewaren.inbx: onbekende soort; kies uit inbox, berichten"),
    ({"permissions.velden": {"kpcc": []}}, "permissions.velden.kpcc: onbekende rol; kies uit "),
    ({"mial": {"host": "x"}}, "mial: onbekende sectie; bedoelde u mail?"),
    ({"besluit": {"x": 1}}, "besluit: onbekende sectie; bedoelde u "),
])
def test_unknown_keys_and_sections_are_refused(tmp_path: Path, sections: dict[str, dict[str, object]],
                                               expected: str) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", sections=sections)
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert str(err.value).startswith(expected), str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_environment_variables_are_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db")
    for name, nearest in (("ZSM_BOT_MATRIX_ACCES_TOKEN", "ZSM_BOT_MATRIX_ACCESS_TOKEN"),
                          ("ZSM_BOT_RAPORT_TOKEN", "ZSM_BOT_RAPPORT_TOKEN"),
                          ("ZSM_BOT_AANVRAAG_LINK_SLEUTTEL", "ZSM_BOT_AANVRAAG_LINK_SLEUTEL")):
        with pytest.raises(ConfigError) as err:
            load_settings(path, environ={name: "x"})
        assert str(err.value) == f"{name}: onbekende variabele; bedoelde u {nearest}?"
    # The config path variable and every documented secret are known; other programs' variables are not ours.
    s = load_settings(path, environ={"ZSM_BOT_CONFIG": str(path), "ZSM_BOT_REGISTRY_TOKEN": "t", "HOME": "/x",
                                     "ZSM_BOT_MAIL_PASSWORD": "p", "ZSM_BOT_INSTROOM_TOKEN": "",
                                     "ZSM_BOT_AANVRAAG_LINK_SLEUTEL": "k" * 32, "ZSM_BOT_PRIVACY_VRIJGAVE_DAGEN": "9"})
    assert s.mail.password == "p" and s.aanvraag.link_key == "k" * 32 and s.privacy.vrijgave_dagen == 9


def test_sections_are_typed_fields(tmp_path: Path) -> None:
    s = load_settings(EXAMPLE, environ={"ZSM_BOT_REGISTRY_ADAPTER": "http", "ZSM_BOT_REGISTRY_URL": "https://r.nl",
                                        "ZSM_BOT_REGISTRY_TOKEN": "t", "ZSM_BOT_INSTROOM_TOKEN": "i" * 16,
                                        "ZSM_BOT_INSTROOM_ROOM": "!zsm:example.nl"})
    assert s.check.identificatie == frozenset({"bsn", "skn"}) and not s.check.zaak_verplicht
    assert s.registry.http is not None and s.registry.http.url == "https://r.nl" and s.registry.http.retries == 2
    assert s.instroom is not None and s.instroom.room == "!zsm:example.nl" and s.rapport is None
    assert s.aanvraag.vh("utrecht").room_id == "!bereikbaarheid-utrecht:example.nl"
    assert s.mail.host == "smtp.example.nl" and s.privacy.vrijgave_dagen == 7
    assert s.privacy.bewaren.days["audit"] == 1825
    assert not hasattr(s, "raw")


@pytest.mark.parametrize(("sections", "env", "expected"), [
    ({"matrix": {"sync_timout_ms": 5}}, {}, "matrix.sync_timout_ms: onbekende sleutel"),
    ({}, {"ZSM_BOT_MATRIX_SYNC_TIMOUT_MS": "5"}, "ZSM_BOT_MATRIX_SYNC_TIMOUT_MS: onbekende variabele"),
    ({"check": {"identificatie": ["gba"]}}, {}, "check.identificatie: onbekend type 'gba'"),
    ({"registry": {"adapter": "http", "url": "http://x"}}, {}, "registry.token ontbreekt"),
    ({"instroom": {"token": "kort"}}, {}, "instroom.token: te kort"),
    ({"rapport": {"token": "kort"}}, {}, "rapport.token: te kort"),
    ({"aanvraag": {"kantoortijden": "laat"}}, {}, "aanvraag.kantoortijden: verwacht 'uu:mm-uu:mm'"),
    ({"mail": {"afzender": "niemand"}}, {}, "mail.afzender: verwacht een e-mailadres"),
    ({"privacy": {"vrijgave_dagen": 0}}, {}, "privacy.vrijgave_dagen: verwacht een aantal dagen van 1 tot en met 90"),
    ({"privacy.bewaren": {"inbox": 0}}, {}, "privacy.bewaren.inbox: verwacht een aantal dagen"),
    ({"permissions": {"check": ["koning"]}}, {}, "permissions.check: onbekende rol 'koning'"),
])
def test_check_config_stops_on_every_section(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch, sections: dict[str, dict[str, object]],
                                             env: dict[str, str], expected: str) -> None:
    """The same loader as the runtime: check-config exits 2 with the one line, before any other check."""
    from cli.main import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", sections=sections)
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"configuratiefout: {expected}"), err
    assert err.count("\n") == 1


def test_check_config_cli_refuses_unknown_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, "sqlite+aiosqlite:///x.db", sections={"mail": {"afzendr": "a@b.nl"}})
    proc = subprocess.run([sys.executable, "-m", "cli", "check-config", "--config", str(path)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "configuratiefout: mail.afzendr: onbekende sleutel; bedoelde u mail.afzender?"


@pytest.mark.parametrize("path", [EXAMPLE, EXAMPLE.parent / "compose" / "zsm-bot.toml"])
def test_shipped_configs_have_only_known_keys(path: Path) -> None:
    assert load_settings(path, environ={}).source == path


def test_unknown_aanvraag_key_in_reference_data_is_refused() -> None:
    from config.aanvraag import parse_config

    with pytest.raises(ConfigError) as err:
        parse_config({}, [("eemland", {"aanvraag_rom": "!oc:localhost", "naam_extra": 1})])
    assert str(err.value) == ("veiligheidshuizen.eemland.aanvraag_rom: onbekende sleutel; bedoelde u "
                              "veiligheidshuizen.eemland.aanvraag_room?")


def house_block(**keys: object) -> dict[str, object]:
    return {"key": "eemland", "naam": "Veiligheidshuis Eemland", "regio": "Midden-Nederland",
            "mailbox": "vh@eemland.example", "gemeenten": ["Amersfoort"], **keys}


@pytest.mark.parametrize("value", ["skn", [], ["bsn", "gba"], [1]])
def test_a_house_identifier_setting_the_bot_cannot_read_stops_the_start(value: object) -> None:
    """Which identifiers a house may receive in a mail is a privacy rule: a value the bot cannot read must not fall
    back to the default (BSN and SKN) and send a BSN to a house that may not have it."""
    from domain.veiligheidshuizen import parse_veiligheidshuizen

    with pytest.raises(ConfigError) as err:
        parse_veiligheidshuizen([house_block(identificatie=value)])
    assert str(err.value) == ("veiligheidshuizen.eemland.identificatie: verwacht een lijst uit bsn, skn, zoals "
                              f"[\"skn\"], kreeg {value!r}")
    (read,) = parse_veiligheidshuizen([house_block(identificatie=["skn", "skn"])]).all()
    assert read.identificatie == ("skn",)


def test_an_unknown_key_of_a_house_is_refused_with_the_nearest() -> None:
    """A misspelt key was ignored: ``gemeentes`` left the house without its gemeenten (``!aanmelden`` would not find
    it), ``identificate`` left it the default identifiers."""
    from domain.veiligheidshuizen import parse_veiligheidshuizen

    for typed, meant in (("gemeentes", "gemeenten"), ("identificate", "identificatie")):
        with pytest.raises(ConfigError) as err:
            parse_veiligheidshuizen([house_block(**{typed: ["x"]})])
        assert str(err.value) == (f"veiligheidshuizen.eemland.{typed}: onbekende sleutel; bedoelde u "
                                  f"veiligheidshuizen.eemland.{meant}?")
