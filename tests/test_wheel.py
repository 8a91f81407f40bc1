"""What an operator does with a release: build the wheel, install it in a fresh environment, run ``zsm-bot``.

The steps, all outside the checkout:

1. ``pip wheel --no-deps -w <tmp>/dist <copy of the checkout>``. The sources are copied first (without .venv, .git,
   build/ and caches) because setuptools reuses a ``build/`` folder in the source tree, and a module deleted since
   the last build would otherwise still ship. The build runs in pip's build isolation like an operator's; only when
   that fails here (no index reachable) it retries with ``--no-build-isolation`` and the test venv's setuptools.
2. A fresh virtual environment in a temporary folder, without pip and without system site-packages, into which the
   test venv's pip (``pip --python``) installs the wheel (not editable) and its declared dependencies. To keep the
   test near half a minute, the dependencies come from a wheelhouse in ``~/.cache/zsm-bot/wheelhouse`` (like the
   Synapse venv the harness caches there) with ``--no-index``: pip still resolves the wheel's own metadata, so a
   dependency missing from pyproject.toml fails here as it would for an operator. When the wheelhouse cannot satisfy
   the wheel (first run on a machine, a new or raised dependency), it is filled from the configured index once
   (``pip wheel``, about a minute) and the install is repeated.
3. In an empty folder (the working directory, no PYTHONPATH, no ``ZSM_BOT_*`` variables but the two secrets the
   starter configuration asks for in the environment), exactly what docs/operations.md tells an operator:
   ``zsm-bot init`` (the packaged example configuration with the packaged reference data, its folders and the
   documented example import file), ``zsm-bot check-config``, ``zsm-bot db upgrade``, ``zsm-bot import
   voorbeeld-markeringen.csv`` and ``zsm-bot console --as <the example's officer>`` with ``!help``, ``!check`` and
   ``!besluit`` on standard input. No other step: nothing is written into the folder by the test.

The installed modules must come from the new environment's site-packages, never from the checkout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WHEELHOUSE = Path.home() / ".cache" / "zsm-bot" / "wheelhouse"
PACKAGES = ("bot", "cli", "commands", "config", "domain", "integrations", "services", "storage", "web")

pytestmark = pytest.mark.slow

OFFICER = "@ovj.jansen:example.nl"  # an officer of the packaged example configuration
PERSON = "999990019"  # the first row of the packaged example import file (a BSN of the government's test range)
# The secrets the starter configuration asks for in the environment (docs/operations.md, First run).
SECRETS = {"ZSM_BOT_MATRIX_ACCESS_TOKEN": "niet-gebruikt", "ZSM_BOT_AUDIT_KEY": "wheel-test-audit-key"}


def run(cmd: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        input: str | None = None) -> subprocess.CompletedProcess[str]:
    stdin = None if input is not None else subprocess.DEVNULL
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd, env=env, input=input,
                          stdin=stdin)


def pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]


def build_wheel(tmp: Path) -> Path:
    source = tmp / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "var", "test-artifacts", "*.db"))
    dist = tmp / "dist"
    proc = run(pip("wheel", "--no-deps", "-q", "-w", str(dist), str(source)))
    if proc.returncode != 0:
        proc = run(pip("wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(source)))
    assert proc.returncode == 0, proc.stderr[-3000:]
    wheels = list(dist.glob("zsm_bot-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def install(venv_python: Path, wheel: Path) -> None:
    """As the Dockerfile and docs/deployment.md install it: the wheel with the versions the suite was run against."""
    lock = str(REPO / "constraints" / "bot.txt")
    local = pip("--python", str(venv_python), "install", "-q", "--no-compile", "--no-index",
                "--find-links", str(WHEELHOUSE), "-c", lock, str(wheel))
    proc = run(local)
    if proc.returncode != 0:
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        fill = run(pip("wheel", "-q", "-w", str(WHEELHOUSE), "-c", lock, str(wheel)))
        assert fill.returncode == 0, fill.stderr[-3000:]
        for own in WHEELHOUSE.glob("zsm_bot-*.whl"):
            own.unlink()  # the project's wheel is built fresh by every run, never taken from the cache
        proc = run(local)
    assert proc.returncode == 0, proc.stderr[-3000:]


def clean_env(venv: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONSTARTUP") and not k.startswith("ZSM_BOT_")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def test_wheel_installs_and_runs_from_an_empty_folder(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path)
    venv = tmp_path / "venv"
    proc = run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert proc.returncode == 0, proc.stderr
    python = venv / "bin" / "python"
    install(python, wheel)

    work = tmp_path / "leeg"
    work.mkdir()
    env = clean_env(venv)

    # the code and the package data come from the new environment, and the checkout is nowhere on sys.path
    probe = run([str(python), "-c", (
        "import importlib, importlib.resources, json, sys\n"
        f"mods = {{n: importlib.import_module(n).__file__ for n in {PACKAGES!r}}}\n"
        "mods['config/afdoeningen.toml'] = str(importlib.resources.files('config') / 'afdoeningen.toml')\n"
        "mods['storage/migrations'] = str(importlib.resources.files('storage') / 'migrations' / 'env.py')\n"
        "print(json.dumps({'mods': mods, 'path': sys.path}))\n"
    )], cwd=work, env=env)
    assert probe.returncode == 0, probe.stderr
    found = json.loads(probe.stdout)
    site = venv.resolve()
    for name, file in found["mods"].items():
        resolved = Path(file).resolve()
        assert resolved.is_relative_to(site) and "site-packages" in resolved.parts, (name, file)
        assert not resolved.is_relative_to(REPO), (name, file)
        assert resolved.exists(), (name, file)
    assert not any(p and Path(p).resolve().is_relative_to(REPO) for p in found["path"]), found["path"]

    env.update(SECRETS)
    zsm_bot = str(venv / "bin" / "zsm-bot")

    init = run([zsm_bot, "init"], cwd=work, env=env)
    assert init.returncode == 0, init.stderr
    assert (work / "zsm-bot.toml").is_file() and (work / "var").is_dir()

    check = run([zsm_bot, "check-config"], cwd=work, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "configuratie in orde: zsm-bot.toml" in check.stdout
    assert "mail.templates" not in check.stdout + check.stderr  # the packaged templates rendered

    upgrade = run([zsm_bot, "db", "upgrade"], cwd=work, env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "database bijgewerkt tot revisie" in upgrade.stdout
    assert (work / "var" / "zsm-bot.db").is_file()

    imported = run([zsm_bot, "import", "voorbeeld-markeringen.csv"], cwd=work, env=env)
    assert imported.returncode == 0, imported.stderr
    assert "import geslaagd: 3 regels gelezen uit voorbeeld-markeringen.csv; 3 nieuw" in imported.stdout

    console = run([zsm_bot, "console", "--as", OFFICER], cwd=work, env=env,
                  input=f"!help\n!check {PERSON}\n!besluit {PERSON} tom\n"
                        f"!aanvraag {PERSON} 24u feit: mishandeling partner voornemen: vs\n")
    assert console.returncode == 0, console.stderr
    assert "Traceback" not in console.stderr, console.stderr
    out = console.stdout
    assert "!check" in out and "!besluit" in out and "!ping" in out  # the help listing
    # the imported marking, seen through the packaged veiligheidshuizen
    assert f"Check BSN ******{PERSON[-3:]}" in out and "Veiligheidshuis regio Utrecht" in out, out
    assert "Doelgroep: huiselijk geweld" in out, out
    # the packaged catalogue: tom is the TOM-zitting
    assert f"Besluit vastgelegd voor BSN ******{PERSON[-3:]}: TOM-zitting." in out, out
    # an advice request with a case sketch, on the packaged data (huiselijk geweld is agreed as prioritised)
    assert "Aanvraag A1 verstuurd naar Veiligheidshuis regio Utrecht" in out, out
    assert sorted(p.name for p in work.iterdir()) == ["var", "voorbeeld-markeringen.csv", "zsm-bot.toml"]
