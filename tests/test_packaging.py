"""The set-up files: docker-compose wiring, the CI script, the Dockerfile and what the wheel carries."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def test_compose_wires_synapse_postgres_mail_and_bot() -> None:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    services = data["services"]
    assert {"synapse", "postgres", "mail", "bot"} <= set(services)
    bot = services["bot"]
    assert set(bot["depends_on"]) == {"postgres", "synapse", "mail"}
    assert bot["environment"]["ZSM_BOT_DATABASE_URL"].startswith("postgresql+asyncpg://")
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    mounted = [v.split(":")[0] for v in bot["volumes"] if v.startswith("./")]
    assert all((REPO / m).exists() for m in mounted)


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
