"""The set-up files: docker-compose wiring, the CI script calling the README's test command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

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
