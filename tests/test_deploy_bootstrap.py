"""``python -m devtools.bootstrap`` against the test Synapse: accounts, the encrypted room behind its alias, the
rendered configuration, a second run that changes nothing, and each bad input as one Dutch line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from devtools.bootstrap import BootstrapError, render_config
from devtools.synapse import SHARED_SECRET, Synapse

pytestmark = pytest.mark.matrix
REPO = Path(__file__).resolve().parents[1]

TEMPLATE = """[matrix]
homeserver = "{url}"
user_id = "@{bot}:localhost"
rooms = []  # filled in by the bootstrap

[users]
"@{officer}:localhost" = "ovj"
"""


def run_bootstrap(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ZSM_", "SYNAPSE_"))}
    return subprocess.run([sys.executable, "-m", "devtools.bootstrap", *args], capture_output=True, text=True,
                          timeout=120, env={**base, "PYTHONPATH": str(REPO), **env}, stdin=subprocess.DEVNULL)


def get(url: str, token: str) -> dict[str, object]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310 (loopback)
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
        return dict(json.loads(r.read()))


def login(url: str, user: str, password: str) -> str:
    body = json.dumps({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
                       "password": password}).encode()
    req = urllib.request.Request(f"{url}/_matrix/client/v3/login", data=body, method="POST",  # noqa: S310
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310
        return str(json.loads(r.read())["access_token"])


def test_bootstrap_creates_accounts_and_encrypted_room_once(synapse: Synapse, tmp_path: Path) -> None:
    bot, officer, alias = (f"{p}-{uuid.uuid4().hex[:6]}" for p in ("zsm-bot", "officier", "afstemming"))
    template = tmp_path / "template.toml"
    template.write_text(TEMPLATE.format(url=synapse.url, bot=bot, officer=officer))
    out = tmp_path / "state" / "zsm-bot.toml"
    env = {"SYNAPSE_REGISTRATION_SHARED_SECRET": SHARED_SECRET, "ZSM_BOT_MATRIX_PASSWORD": "bot-pw-123",
           "ZSM_OFFICER_PASSWORD": "officer-pw-123"}
    args = ["--template", str(template), "--output", str(out), "--officer", f"@{officer}:localhost",
            "--alias", alias, "--wait", "30"]

    first = run_bootstrap(args, env)
    assert first.returncode == 0, first.stderr
    assert f"@{bot}:localhost: aangemaakt" in first.stdout and f"@{officer}:localhost: aangemaakt" in first.stdout
    rendered = out.read_text()
    assert "rooms = [\"!" in rendered and f'"@{officer}:localhost" = "ovj"' in rendered

    token = login(synapse.url, f"@{officer}:localhost", "officer-pw-123")
    room_id = get(f"{synapse.url}/_matrix/client/v3/directory/room/{urllib.parse.quote(f'#{alias}:localhost')}",
                  token)["room_id"]
    assert f'rooms = ["{room_id}"]' in rendered
    assert f"room #{alias}:localhost = {room_id}" in first.stdout
    room = urllib.parse.quote(str(room_id))
    encryption = get(f"{synapse.url}/_matrix/client/v3/rooms/{room}/state/m.room.encryption/", token)
    assert encryption["algorithm"] == "m.megolm.v1.aes-sha2"
    member = get(f"{synapse.url}/_matrix/client/v3/rooms/{room}/state/m.room.member/"
                 f"{urllib.parse.quote(f'@{bot}:localhost')}", token)
    assert member["membership"] == "invite"
    login(synapse.url, f"@{bot}:localhost", "bot-pw-123")  # the bot's password is the one from the environment

    second = run_bootstrap(args, env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("bestond al") == 2 and f"= {room_id}" in second.stdout  # the same room again
    assert out.read_text() == rendered


@pytest.mark.parametrize(("env", "expected"), [
    ({"ZSM_BOT_MATRIX_PASSWORD": "x", "ZSM_OFFICER_PASSWORD": "y"}, "SYNAPSE_REGISTRATION_SHARED_SECRET ontbreekt"),
    ({"SYNAPSE_REGISTRATION_SHARED_SECRET": "fout", "ZSM_BOT_MATRIX_PASSWORD": "x", "ZSM_OFFICER_PASSWORD": "y"},
     "klopt SYNAPSE_REGISTRATION_SHARED_SECRET?"),
])
def test_bad_secrets_are_one_dutch_line(synapse: Synapse, tmp_path: Path, env: dict[str, str], expected: str) -> None:
    template = tmp_path / "template.toml"
    template.write_text(TEMPLATE.format(url=synapse.url, bot=f"b{uuid.uuid4().hex[:6]}", officer="o"))
    proc = run_bootstrap(["--template", str(template), "--output", str(tmp_path / "out.toml"),
                          "--officer", "@o:localhost", "--wait", "5"], env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bootstrap mislukt: "), proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out.toml").exists()


def test_unreachable_homeserver_is_named(tmp_path: Path) -> None:
    template = tmp_path / "template.toml"
    template.write_text(TEMPLATE.format(url="http://127.0.0.1:9", bot="b", officer="o"))
    proc = run_bootstrap(["--template", str(template), "--output", str(tmp_path / "out.toml"),
                          "--officer", "@o:localhost", "--wait", "1"],
                         {"SYNAPSE_REGISTRATION_SHARED_SECRET": "s", "ZSM_BOT_MATRIX_PASSWORD": "x",
                          "ZSM_OFFICER_PASSWORD": "y"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "homeserver http://127.0.0.1:9 antwoordt niet" in proc.stderr


def test_render_config_fills_rooms_of_matrix_only() -> None:
    template = '[matrix]\nuser_id = "@b:x"\nrooms = []\n\n[instroom]\nroom = "!keep:x"\n'
    rendered = render_config(template, "!abc", Path("t.toml"))
    assert 'rooms = ["!abc"]' in rendered and 'room = "!keep:x"' in rendered
    with pytest.raises(BootstrapError, match="geen regel 'rooms"):
        render_config('[matrix]\nuser_id = "@b:x"\n[other]\nrooms = []\n', "!abc", Path("t.toml"))
    with pytest.raises(BootstrapError, match="geen sectie"):
        render_config('[http]\nport = 1\n', "!abc", Path("t.toml"))
