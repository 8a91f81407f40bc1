"""The tested versions (``constraints/``, written by ``scripts/lock``): what a clean clone, the image and the harness's
Synapse install, so that a release published after the last lock cannot fail CI or an operator's install.

A clean clone once failed ``mypy --strict`` only because a newer mypy and SQLAlchemy had been released since the
last run: the lock makes the suite's run repeatable, and these tests keep it in step with pyproject.toml.
"""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from devtools.synapse import SYNAPSE_LOCK, SYNAPSE_VERSION

REPO = Path(__file__).resolve().parents[1]
BOT_LOCK = REPO / "constraints" / "bot.txt"


def pins(path: Path) -> dict[str, Version]:
    """The file's pins by canonical name; every line but comments must be ``name==version``, each name once."""
    found: dict[str, Version] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        req = Requirement(line)
        (spec,) = req.specifier  # exactly one specifier ...
        assert spec.operator == "==" and "*" not in spec.version, f"{path.name}: {line!r} is not an exact pin"
        name = canonicalize_name(req.name)
        assert name not in found, f"{path.name}: {req.name} pinned twice"
        found[name] = Version(spec.version)
    return found


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    locked = pins(BOT_LOCK)
    problems = []
    for req in declared():
        version = locked.get(canonicalize_name(req.name))
        if version is None:
            problems.append(f"{req.name} is not in constraints/bot.txt")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}: locked {version} is outside pyproject.toml's {req.specifier}")
    assert not problems, "run scripts/lock after changing pyproject.toml: " + "; ".join(problems)


def test_the_suite_runs_on_the_locked_versions() -> None:
    """scripts/test installs with the lock, so the versions under test are the locked ones; a venv installed before
    the last lock says which packages differ."""
    differ = []
    for name, version in pins(BOT_LOCK).items():
        try:
            installed = Version(importlib.metadata.version(name))
        except importlib.metadata.PackageNotFoundError:
            continue  # only for another platform or Python (a marker): not installed here, not constrained
        if installed != version:
            differ.append(f"{name} {installed} (locked {version})")
    assert not differ, "this venv is not the lock; scripts/test installs it: " + ", ".join(differ)


def test_the_harness_synapse_is_locked_at_its_version() -> None:
    locked = pins(SYNAPSE_LOCK)
    assert locked[canonicalize_name("matrix-synapse")] == Version(SYNAPSE_VERSION)
    # the driver devtools.synapse.ensure_postgres_driver adds, and Synapse's own framework
    assert {"psycopg2-binary", "twisted"} <= set(locked)


def test_every_install_of_the_project_uses_the_lock() -> None:
    for script in ("scripts/test", "scripts/run-local"):
        installs = [line for line in (REPO / script).read_text(encoding="utf-8").splitlines()
                    if "pip install" in line and not line.lstrip().startswith("#")]
        assert installs and all("-c constraints/bot.txt" in line for line in installs), (script, installs)
    assert "-c /dist/constraints.txt" in (REPO / "Dockerfile").read_text(encoding="utf-8")
