"""First start of a homeserver for the bot: accounts, the encrypted room with its alias, and the bot's room list.

Used by the one-shot ``bootstrap`` service of ``docker-compose.yml`` (``python -m devtools.bootstrap``, in the bot's
own image) and by ``scripts/run-local``. Only the standard library, so it runs wherever the bot is installed.

Every step is idempotent, because compose runs the service on every ``up``: an account that exists is left alone
(its password is the one the environment says), an alias that resolves is reused, and the bot is invited again only
when it is not in the room. The room id is known only after the room exists (and a room id of room version 12 has no
server part, so the alias is what people type), so the bot's configuration is rendered here: the ``rooms = [...]``
line of ``[matrix]`` in the template gets the id, the rest of the file is copied as it is.

Secrets come from the environment only: ``SYNAPSE_REGISTRATION_SHARED_SECRET`` (Synapse's shared registration
secret), ``ZSM_BOT_MATRIX_PASSWORD`` (the bot's password, the same variable the bot reads) and
``ZSM_OFFICER_PASSWORD`` (the first officer's).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOM_NAME = "ZSM afstemmingsoverleg"
ROOMS_LINE = re.compile(r"^rooms\s*=.*$", re.MULTILINE)


class BootstrapError(Exception):
    """One line for the operator: what failed and what to do."""


@dataclass(frozen=True)
class Room:
    room_id: str
    alias: str


def _request(url: str, method: str = "GET", body: dict[str, Any] | None = None,
             token: str | None = None, timeout: float = 15) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,  # noqa: S310 (the configured homeserver)
                                 headers={"Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310
            return int(r.status), dict(json.loads(r.read() or b"{}"))
    except urllib.error.HTTPError as exc:
        try:
            payload = dict(json.loads(exc.read() or b"{}"))
        except ValueError:
            payload = {}
        return int(exc.code), payload


def wait_for_homeserver(url: str, timeout: float = 300) -> None:
    """Compose starts us once Synapse reports healthy, but a restart of the stack may race: wait, capped backoff."""
    deadline = time.monotonic() + timeout
    delay = 0.5
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as r:  # noqa: S310
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise BootstrapError(f"homeserver {url} antwoordt niet binnen {timeout:.0f} s; draait Synapse?")
        print(f"wachten op {url} ...", flush=True)
        time.sleep(delay)
        delay = min(delay * 2, 10)


def register_user(url: str, shared_secret: str, localpart: str, password: str, *,
                  admin: bool = False) -> dict[str, Any] | None:
    """Shared-secret registration (Synapse admin API); ``None`` when the account already exists."""
    status, nonce = _request(f"{url}/_synapse/admin/v1/register")
    if status != 200:
        raise BootstrapError(f"registratie-API van {url} niet beschikbaar (HTTP {status})")
    mac = hmac.new(shared_secret.encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([str(nonce["nonce"]).encode(), localpart.encode(), password.encode(),
                             b"admin" if admin else b"notadmin"]))
    status, body = _request(f"{url}/_synapse/admin/v1/register", "POST", {
        "nonce": nonce["nonce"], "username": localpart, "password": password, "admin": admin,
        "mac": mac.hexdigest(),
    })
    if status == 200:
        return body
    if body.get("errcode") == "M_USER_IN_USE":
        return None
    if status in (401, 403):
        raise BootstrapError("Synapse weigert de registratie: klopt SYNAPSE_REGISTRATION_SHARED_SECRET?")
    raise BootstrapError(f"registratie van {localpart} mislukt (HTTP {status} {body.get('errcode', '')})")


def login(url: str, user_id: str, password: str) -> str:
    status, body = _request(f"{url}/_matrix/client/v3/login", "POST", {
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user_id}, "password": password,
        "initial_device_display_name": "zsm-bot bootstrap",
    })
    if status != 200:
        raise BootstrapError(f"inloggen als {user_id} mislukt (HTTP {status}); klopt het wachtwoord?")
    return str(body["access_token"])


def logout(url: str, token: str) -> None:
    _request(f"{url}/_matrix/client/v3/logout", "POST", {}, token)


def ensure_room(url: str, token: str, alias: str, bot_user: str) -> Room:
    """The encrypted room behind ``alias``, created by the logged-in officer when the alias does not resolve."""
    quoted = urllib.parse.quote(alias)
    status, body = _request(f"{url}/_matrix/client/v3/directory/room/{quoted}", token=token)
    if status == 200:
        room_id = str(body["room_id"])
        status, member = _request(f"{url}/_matrix/client/v3/rooms/{urllib.parse.quote(room_id)}/state/"
                                  f"m.room.member/{urllib.parse.quote(bot_user)}", token=token)
        if status != 200 or member.get("membership") not in ("join", "invite"):
            _request(f"{url}/_matrix/client/v3/rooms/{urllib.parse.quote(room_id)}/invite", "POST",
                     {"user_id": bot_user}, token)
        return Room(room_id, alias)
    localpart = alias[1:].split(":", 1)[0]
    status, body = _request(f"{url}/_matrix/client/v3/createRoom", "POST", {
        "name": ROOM_NAME, "room_alias_name": localpart, "preset": "private_chat", "invite": [bot_user],
        "initial_state": [{"type": "m.room.encryption", "state_key": "",
                           "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
    }, token)
    if status != 200:
        raise BootstrapError(f"room {alias} aanmaken mislukt (HTTP {status} {body.get('errcode', '')})")
    return Room(str(body["room_id"]), alias)


def render_config(template: str, room_id: str, source: Path) -> str:
    """The template with ``rooms`` of ``[matrix]`` set to the room; refused when the template has no such line."""
    match = re.search(r"^\[matrix\]\s*$", template, re.MULTILINE)
    end = re.search(r"^\[", template[match.end():], re.MULTILINE) if match else None
    if match is None:
        raise BootstrapError(f"{source}: geen sectie [matrix]")
    section_end = match.end() + end.start() if end else len(template)
    section = template[match.end():section_end]
    if not ROOMS_LINE.search(section):
        raise BootstrapError(f"{source}: [matrix] heeft geen regel 'rooms = [...]' om de room in te vullen")
    section = ROOMS_LINE.sub(f"rooms = [{json.dumps(room_id)}]", section, count=1)
    header = f"# Generated by the bootstrap service from {source}; edit that file, not this one.\n"
    rendered = header + template[:match.end()] + section + template[section_end:]
    tomllib.loads(rendered)  # the result must stay valid TOML
    return rendered


def bootstrap(*, homeserver: str, shared_secret: str, bot_user: str, bot_password: str, officer: str,
              officer_password: str, alias_localpart: str, wait_seconds: float = 300) -> Room:
    server_name = bot_user.split(":", 1)[1]
    wait_for_homeserver(homeserver, wait_seconds)
    for user_id, password in ((bot_user, bot_password), (officer, officer_password)):
        made = register_user(homeserver, shared_secret, user_id[1:].split(":", 1)[0], password)
        print(f"{user_id}: {'aangemaakt' if made else 'bestond al'}", flush=True)
    token = login(homeserver, officer, officer_password)
    try:
        return ensure_room(homeserver, token, f"#{alias_localpart}:{server_name}", bot_user)
    finally:
        logout(homeserver, token)


def _secret(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise BootstrapError(f"{name} ontbreekt in de omgeving")
    return value


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--template", required=True, type=Path, help="the bot's configuration with 'rooms = []'")
    ap.add_argument("--output", required=True, type=Path, help="where the bot's configuration is written")
    ap.add_argument("--officer", required=True, help="Matrix id of the first officer, e.g. @officier:zsm.localhost")
    ap.add_argument("--alias", default="zsm-afstemming", help="local part of the room alias")
    ap.add_argument("--wait", type=float, default=300, help="seconds to wait for the homeserver")
    args = ap.parse_args(argv)
    try:
        template = args.template.read_text(encoding="utf-8")
        matrix = tomllib.loads(template).get("matrix", {})
        room = bootstrap(
            homeserver=os.environ.get("ZSM_BOT_MATRIX_HOMESERVER", str(matrix.get("homeserver", ""))).rstrip("/"),
            shared_secret=_secret("SYNAPSE_REGISTRATION_SHARED_SECRET"),
            bot_user=str(matrix.get("user_id", "")), bot_password=_secret("ZSM_BOT_MATRIX_PASSWORD"),
            officer=args.officer, officer_password=_secret("ZSM_OFFICER_PASSWORD"), alias_localpart=args.alias,
            wait_seconds=args.wait,
        )
        rendered = render_config(template, room.room_id, args.template)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.output.with_suffix(".tmp")
        tmp.write_text(rendered, encoding="utf-8")
        tmp.replace(args.output)
    except (BootstrapError, OSError, tomllib.TOMLDecodeError) as exc:
        print(f"bootstrap mislukt: {exc}", file=sys.stderr)
        return 1
    print(f"room {room.alias} = {room.room_id}; configuratie: {args.output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
