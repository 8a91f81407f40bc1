"""``scripts/run-local``: the demo data on which ``!aanvraag`` works, the mail catcher a mail really lands in, the
printed room alias and id and state folder, and no reinstall when nothing changed.

``devtools.local`` runs for real (console, and against its own Synapse) with its state folder and ports moved into
``tmp_path`` by its environment variables, so it does not touch ``var/local`` or the ports of a running demo.
The install step of the shell script is tested with a stand-in ``.venv/bin/python`` that only records how it was
called: a real pip install inside the test run would rewrite the very environment the tests run from.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devtools.synapse import free_port
from tests.test_aanvraag import SKETCH
from tests.test_compose_as_image import officer_client

REPO = Path(__file__).resolve().parents[1]


def local_env(state: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZSM_BOT_")}
    return {**env, "PYTHONPATH": str(REPO), "ZSM_LOCAL_STATE": str(state), **extra}


def test_console_has_demo_data_on_which_aanvraag_works(tmp_path: Path) -> None:
    state = tmp_path / "local"
    proc = subprocess.run([sys.executable, "-m", "devtools.local", "--console"], cwd=REPO, env=local_env(state),
                          input=f"!ping\n!aanvraag 123456782 {SKETCH}\n!aanvraag 111222333 {SKETCH}\n",
                          capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "import geslaagd: 2 regels" in out
    assert "pong" in out
    assert "Aanvraag A1 verstuurd naar Veiligheidshuis regio Utrecht voor BSN ******782" in out, out
    assert "de mail aan de centrale mailbox staat in de outbox en gaat zo uit" in out and "gemaild" not in out
    assert "valt bij utrecht onder doelgroep 'veelpleger'" in out  # outside the agreed doelgroep: refused, said why
    assert f"Status: {state}/" in out and f"Mail: {state / 'mail' / 'new'}/" in out
    # the packaged reference file is not changed; the agreement lives in the run-local configuration only
    assert "[aanvraag.vh.utrecht]" in (state / "console.toml").read_text()
    assert "Traceback" not in proc.stderr


@pytest.mark.matrix
@pytest.mark.slow
async def test_run_local_prints_alias_and_room_and_mail_lands_in_the_maildir(tmp_path: Path) -> None:
    state = tmp_path / "local"
    env = local_env(state, ZSM_LOCAL_SYNAPSE_PORT=str(free_port()), ZSM_LOCAL_HTTP_PORT=str(free_port()))
    log = tmp_path / "run-local.log"
    proc = subprocess.Popen([sys.executable, "-m", "devtools.local"], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115
    officer = None
    url = ""
    try:
        deadline = time.monotonic() + 240
        found = None
        while time.monotonic() < deadline and found is None:
            assert proc.poll() is None, log.read_text()[-3000:]
            found = re.search(r"homeserver:\s+(\S+)\n.*wachtwoord:\s+(\S+)\n\s+room:\s+(#\S+)\s+\(room-id (!\S+)\)",
                              log.read_text(), re.DOTALL)
            await asyncio.sleep(0.5)
        assert found, log.read_text()[-3000:]
        url, password, alias, room_id = found.groups()
        assert alias == "#zsm-afstemming:localhost"
        assert f"Alle status (accounts, room, crypto-store, database, mail) staat in {state}/" in log.read_text()
        officer = await officer_client(url, "@officier:localhost", password, tmp_path / "officer")
        await officer.wait_member(room_id, "@zsm-bot:localhost", timeout=120)
        # Readiness probe, as an operator would do it: !ping (harmless to repeat) until the bot answers. On a busy
        # machine the first message can be encrypted before the bot's one-time keys are claimable; a later message
        # then opens a new session. The log tail is shown if the bot never answers.
        pong = None
        deadline = time.monotonic() + 180
        while pong is None and time.monotonic() < deadline:
            if officer.client.olm is not None:  # a retry: a fresh megolm session, shared with every device now known
                officer.client.olm.outbound_group_sessions.pop(room_id, None)
            ping = await officer.send(room_id, "!ping")
            with contextlib.suppress(AssertionError):
                pong = await officer.wait_reply(ping, timeout=30)
        assert pong is not None and pong.body == "pong", log.read_text()[-3000:]
        ask = await officer.send(room_id, f"!aanvraag 123456782 {SKETCH}")
        reply = await officer.wait_reply(ask, timeout=60)
        assert "Aanvraag A1" in reply.body and "gemaild" not in reply.body, reply.body
        maildir = state / "mail" / "new"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (maildir.exists() and any(maildir.iterdir())):
            await asyncio.sleep(0.5)
        mails = list(maildir.iterdir()) if maildir.exists() else []
        assert mails, log.read_text()[-3000:]
        message = email.message_from_bytes(mails[0].read_bytes())
        assert message["To"] == "terugkoppeling@vh-utrecht.example"
        assert "A1" in str(message["Subject"])
    finally:
        if officer is not None:
            await officer.close()
        proc.send_signal(signal.SIGINT)  # Ctrl-C, as the printed text says: the bot stops, then its Synapse
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, log.read_text()[-3000:]
    with pytest.raises(urllib.error.URLError):  # its Synapse was stopped with it, not left behind
        urllib.request.urlopen(f"{url}/health", timeout=5)  # noqa: S310 (loopback)


STAND_IN = """#!/bin/sh
# Stand-in for .venv/bin/python: records the call; "-c" probes succeed once an install was recorded.
echo "$*" >> "$(dirname "$0")/../../calls.log"
case "$1" in
  -c) grep -q "pip install" "$(dirname "$0")/../../calls.log" ;;
  *) exit 0 ;;
esac
"""


def test_script_installs_only_when_pyproject_or_the_tested_versions_changed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    (repo / "constraints").mkdir()
    shutil.copy(REPO / "scripts" / "run-local", repo / "scripts" / "run-local")
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")
    shutil.copy(REPO / "constraints" / "bot.txt", repo / "constraints" / "bot.txt")
    python = repo / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(STAND_IN)
    python.chmod(0o755)
    calls = repo / "calls.log"

    def run() -> list[str]:
        before = calls.read_text().splitlines() if calls.exists() else []
        proc = subprocess.run(["bash", str(repo / "scripts" / "run-local"), "--console"], capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return calls.read_text().splitlines()[len(before):]

    first = run()
    # the versions the suite was run against (scripts/lock), not whatever was released since
    assert any("pip install" in c and "-c constraints/bot.txt" in c and "-e ." in c for c in first), first
    assert first[-1] == "-m devtools.local --console"
    second = run()
    assert not any("pip install" in c for c in second), second  # nothing changed: no reinstall
    assert second[-1] == "-m devtools.local --console"
    with (repo / "pyproject.toml").open("a") as f:
        f.write("\n# a changed dependency\n")
    third = run()
    assert any("pip install" in c for c in third), third
    assert not any("pip install" in c for c in run())
    with (repo / "constraints" / "bot.txt").open("a") as f:
        f.write("# a new lock\n")
    assert any("pip install" in c for c in run())
