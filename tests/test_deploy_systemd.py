"""deploy/zsm-bot.service: systemd accepts it and it is hardened.

Where ``systemd-analyze`` exists (it does on the CI machine, Debian's systemd 252) the unit is verified with it and
its offline exposure score must stay low. ``verify`` checks that ExecStart names an executable, so a copy of the
unit with ``/opt/zsm-bot`` replaced by this test environment's prefix (where ``zsm-bot`` is installed) is verified.
Without ``systemd-analyze`` those two tests skip and say so; the parse of the hardening keys below runs everywhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNIT = REPO / "deploy" / "zsm-bot.service"
ANALYZE = shutil.which("systemd-analyze")
no_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed: only the parse test runs")


def parse(text: str) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value (systemd allows a key more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def local_copy(tmp_path: Path) -> Path:
    prefix = str(Path(sys.executable).parent.parent)
    assert (Path(prefix) / "bin" / "zsm-bot").exists(), "the test environment has zsm-bot installed"
    copy = tmp_path / "zsm-bot.service"
    copy.write_text(UNIT.read_text().replace("/opt/zsm-bot", prefix))
    return copy


def test_unit_runs_the_wheel_install_as_its_own_user_with_hardening() -> None:
    unit = parse(UNIT.read_text())
    svc = unit["Service"]
    assert svc["ExecStart"] == ["/opt/zsm-bot/bin/zsm-bot run"]
    assert svc["ExecStartPre"] == ["/opt/zsm-bot/bin/zsm-bot check-config"]
    assert svc["DynamicUser"] == ["yes"] and svc["User"] == ["zsm-bot"]
    assert svc["StateDirectory"] == ["zsm-bot"] and svc["WorkingDirectory"] == ["/var/lib/zsm-bot"]
    assert svc["EnvironmentFile"] == ["/etc/zsm-bot/zsm-bot.env"]
    assert "ZSM_BOT_CONFIG=/etc/zsm-bot/zsm-bot.toml" in svc["Environment"]
    assert svc["Restart"] == ["on-failure"]
    for key, value in {"ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "NoNewPrivileges": "yes",
                       "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
                       "ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "RestrictSUIDSGID": "yes",
                       "LockPersonality": "yes", "UMask": "0077", "CapabilityBoundingSet": ""}.items():
        assert svc.get(key) == [value], f"{key}={value} missing"
    assert set(svc["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert "@system-service" in svc["SystemCallFilter"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    # nothing outside the state directory is writable, so nothing else may be named writable
    assert "ReadWritePaths" not in svc


@no_analyze
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    assert ANALYZE is not None
    proc = subprocess.run([ANALYZE, "verify", str(local_copy(tmp_path))], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "zsm-bot.service" not in proc.stderr, proc.stderr  # no warning about our unit


@no_analyze
def test_exposure_score_is_low(tmp_path: Path) -> None:
    assert ANALYZE is not None
    proc = subprocess.run([ANALYZE, "security", "--offline=yes", str(local_copy(tmp_path))], capture_output=True,
                          text=True, timeout=60)
    found = re.search(r"Overall exposure level for zsm-bot\.service: ([\d.]+)", proc.stdout)
    assert found, proc.stdout[-2000:] + proc.stderr
    assert float(found.group(1)) <= 2.0, proc.stdout[-3000:]
