"""The set-up files: docker-compose wiring, the CI script, the Dockerfile and what the wheel carries."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "docker-compose.yml").read_text()))


# One-shot services: they run to completion before the services that depend on them start.
ONE_SHOT = {"bootstrap", "mail-cert"}


def test_compose_wires_synapse_postgres_mail_and_bot() -> None:
    services = _compose()["services"]
    assert {"synapse", "postgres", "mail", "bot", "bootstrap", "mail-cert"} <= set(services)
    bot = services["bot"]
    assert bot["depends_on"] == {
        "postgres": {"condition": "service_healthy"}, "synapse": {"condition": "service_healthy"},
        "mail": {"condition": "service_healthy"}, "bootstrap": {"condition": "service_completed_successfully"},
    }
    assert services["bootstrap"]["depends_on"] == {"synapse": {"condition": "service_healthy"}}
    assert services["synapse"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["mail"]["depends_on"] == {"mail-cert": {"condition": "service_completed_successfully"}}
    assert bot["environment"]["ZSM_BOT_DATABASE_URL"].startswith("postgresql+asyncpg://")
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
        mounted = [v.split(":")[0] for v in svc.get("volumes", []) if v.startswith("./")]
        assert all((REPO / m).exists() for m in mounted), (name, mounted)


def test_compose_synapse_runs_on_postgres() -> None:
    services = _compose()["services"]
    homeserver = yaml.safe_load((REPO / "deploy/compose/synapse/homeserver.yaml").read_text())
    assert homeserver["database"]["name"] == "psycopg2"
    assert homeserver["database"]["args"]["host"] == "postgres"
    assert "password" not in homeserver["database"]["args"], "the password comes from PGPASSWORD, not the file"
    assert "registration_shared_secret" not in homeserver  # written from the environment at start
    # the bot's user id and the officer belong to this server name
    compose_cfg = tomllib.loads((REPO / "config/compose/zsm-bot.toml").read_text())
    assert compose_cfg["matrix"]["user_id"].endswith(":" + homeserver["server_name"])
    assert "PGPASSWORD" in services["synapse"]["environment"]
    init = [v for v in services["postgres"]["volumes"] if "/docker-entrypoint-initdb.d/" in v]
    assert init and "LC_COLLATE 'C'" in (REPO / init[0].split(":")[0]).read_text()


def test_compose_restart_policies_and_healthchecks() -> None:
    for name, svc in _compose()["services"].items():
        if name in ONE_SHOT:
            assert svc.get("restart") == "on-failure", f"{name}: a one-shot retries only when it failed"
            continue
        assert svc.get("restart") in ("unless-stopped", "always"), f"{name} has no restart policy"
        check = svc.get("healthcheck", {}).get("test")
        assert check and check[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"
    bot_check = _compose()["services"]["bot"]["healthcheck"]["test"]
    assert "/readyz" in " ".join(bot_check)
    # `docker run` of the image checks the same as compose does
    dockerfile = (REPO / "Dockerfile").read_text()
    assert "CMD " + json.dumps(bot_check[1:]) in dockerfile.replace("\\\n    ", "")


def test_compose_images_are_pinned() -> None:
    from devtools.synapse import SYNAPSE_VERSION

    for name, svc in _compose()["services"].items():
        image = svc.get("image")
        assert image, f"{name} names no image"
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: image {image} is not pinned"
        assert any(c.isdigit() for c in tag), f"{name}: tag {tag} names no version"
    # the compose Synapse is the version the tests run against
    assert _compose()["services"]["synapse"]["image"] == f"matrixdotorg/synapse:v{SYNAPSE_VERSION}"
    assert re.search(r"^FROM python:3\.11\.\d+-slim", (REPO / "Dockerfile").read_text(), re.MULTILINE)


def test_compose_secrets_are_required_without_defaults() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    variables = re.findall(r"\$\{([A-Z0-9_]+)([^}]*)\}", text)
    assert variables
    for name, rest in variables:
        assert rest.startswith(":?") and len(rest) > 2, f"${{{name}{rest}}}: a secret must be required with a message"
    names = {n for n, _ in variables}
    assert {"ZSM_BOT_AUDIT_KEY", "ZSM_DB_PASSWORD", "ZSM_BOT_MATRIX_PASSWORD", "SYNAPSE_REGISTRATION_SHARED_SECRET",
            "SYNAPSE_DB_PASSWORD", "ZSM_OFFICER_PASSWORD"} <= names
    assert "change-me" not in text


def test_compose_configuration_names_rooms_mail_and_packaged_reference_data() -> None:
    cfg = tomllib.loads((REPO / "config/compose/zsm-bot.toml").read_text())
    assert cfg["matrix"]["rooms"] == []  # the bootstrap service fills it with the room's id
    assert "referentie" not in cfg, "the packaged reference data is used; a path into /app does not exist"
    assert cfg["mail"]["enabled"] is True and cfg["mail"]["tls"] == "starttls" and cfg["mail"]["host"] == "mail"
    certs = [v for v in _compose()["services"]["bot"]["volumes"] if v.startswith("mailcerts:")]
    assert certs and cfg["mail"]["ca_bestand"].startswith(certs[0].split(":")[1] + "/")
    bootstrap = _compose()["services"]["bootstrap"]
    out = bootstrap["command"][bootstrap["command"].index("--output") + 1]
    assert _compose()["services"]["bot"]["environment"]["ZSM_BOT_CONFIG"] == out


@pytest.mark.skipif(shutil.which("docker") is None, reason="no docker client on this machine")
def test_compose_config_parses_with_docker() -> None:
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("docker client has no compose plugin here")
    proc = subprocess.run(["docker", "compose", "config", "-q"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_ci_runs_the_readme_test_command() -> None:
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert "scripts/test" in readme and "bash scripts/test" in ci
    assert "scripts/run-local" in readme


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _packages() -> list[str]:
    return [p.rstrip("*") for p in _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]]


def test_every_data_file_of_a_package_is_package_data() -> None:
    """A file next to the code that is not Python (reference data, templates, migrations) must be in the wheel."""
    package_data: dict[str, list[str]] = _pyproject()["tool"]["setuptools"]["package-data"]
    missing = []
    for package in _packages():
        for path in sorted((REPO / package).rglob("*")):
            if path.is_dir() or "__pycache__" in path.parts:
                continue
            if path.suffix == ".py" and "migrations" not in path.parts:
                continue  # modules of the packages setuptools finds; alembic's scripts are data
            rel = path.relative_to(REPO / package).as_posix()
            if not any(fnmatch.fnmatch(rel, glob) for glob in package_data.get(package, [])):
                missing.append(f"{package}/{rel}")
    assert not missing, f"not in [tool.setuptools.package-data]: {missing}"


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    missing = [p for p in _packages() if f"COPY {p} {p}\n" not in dockerfile]
    assert not missing, f"Dockerfile does not copy {missing}"


def test_ci_checks_the_import_contract() -> None:
    assert "lint-imports" in (REPO / "scripts" / "test").read_text(encoding="utf-8")
    contracts = _pyproject()["tool"]["importlinter"]["contracts"]
    assert {c["id"] for c in contracts} >= {"layers", "commands-are-adapters", "domain-is-pure"}
