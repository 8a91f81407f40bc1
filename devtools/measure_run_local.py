"""Measures ``scripts/run-local`` as a newcomer meets it: seconds from the command to ``/readyz`` answering 200.

``python -m devtools.measure_run_local [--runs 3]`` clones the committed checkout into a temporary folder (so no
``.venv`` and no ``var/local``), points the Synapse venv at a fresh folder there too, and runs the script
``--runs`` times on the same ports: the first run installs everything, the later ones must install nothing.
The figures go into the header of ``scripts/run-local`` and docs/deployment.md. It takes minutes; not a test.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from devtools.synapse import free_port

ROOT = Path(__file__).resolve().parents[1]


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="run-local-") as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
        http = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ZSM_", "VIRTUAL_ENV"))}
        env.update(ZSM_SYNAPSE_VENV=str(Path(tmp) / "synapse-venv"), ZSM_LOCAL_SYNAPSE_PORT=str(free_port()),
                   ZSM_LOCAL_HTTP_PORT=str(http))
        for run in range(1, args.runs + 1):
            log = Path(tmp) / f"run{run}.log"
            start = time.monotonic()
            with log.open("wb") as out:
                proc = subprocess.Popen(["scripts/run-local"], cwd=repo, env=env, stdout=out,
                                        stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                took = None
                while time.monotonic() - start < 900 and proc.poll() is None:
                    if ready(http):
                        took = time.monotonic() - start
                        break
                    time.sleep(0.25)
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=60)
            installed = "installeren" in log.read_text(errors="replace")
            figure = f"{took:.1f} s" if took is not None else "never ready (see the log)"
            print(f"run {run}: ready after {figure}; installed: {'yes' if installed else 'no'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
