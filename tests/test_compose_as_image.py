"""The compose stack without docker: every service of ``docker-compose.yml`` that is ours, run as its image runs it.

Images cannot be pulled or built on this machine, so the containers are replaced by what they contain:

- the bot's image is the wheel installed into a fresh virtual environment outside the checkout, as the
  Dockerfile does (``pip wheel``, then ``venv`` + ``pip install <wheel>``), with that venv first on ``PATH``;
- the volumes are folders under ``tmp_path`` (a bind mount of the checkout stays that file), and every container
  path in the compose file, the commands and the configuration is mapped onto them;
- the service host names are mapped onto loopback: ``synapse`` is the test Synapse (server name ``zsm.localhost``
  as in the compose homeserver.yaml; on SQLite here, where compose runs it on PostgreSQL), ``postgres`` the local
  test PostgreSQL (a fresh database; its ``zsm_bot`` role is replaced by the harness's trusted login), and ``mail``
  an aiosmtpd that, like the Mailpit of the stack, requires STARTTLS with the certificate the ``mail-cert`` service
  makes (its script is run as compose runs it).

Then, in compose's order: ``mail-cert``, ``bootstrap`` (its entrypoint and command, its environment with every
``${VAR:?}`` filled from the secrets below), and the bot (the image's entrypoint with the compose command and
environment, the compose configuration file ``config/compose/zsm-bot.toml`` as rendered by the bootstrap). The
compose healthcheck of the bot must pass, and an officer logged in with the bootstrap's password gets answers to
``!ping`` and ``!check`` in the encrypted room behind the alias, and a referral's mail arrives over STARTTLS.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from nio import AsyncClient, AsyncClientConfig, LoginResponse

from devtools.synapse import SHARED_SECRET, Synapse, free_port
from tests.harness import pg
from tests.harness.matrix import Officer
from tests.smtp_helpers import SmtpServer
from tests.test_wheel import build_wheel, clean_env, install

pytestmark = [pytest.mark.slow, pytest.mark.matrix, pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[1]
SECRETS = {
    "ZSM_DB_PASSWORD": "db-secret-for-the-test",
    "SYNAPSE_DB_PASSWORD": "synapse-db-secret-for-the-test",
    "SYNAPSE_REGISTRATION_SHARED_SECRET": SHARED_SECRET,
    "ZSM_BOT_MATRIX_PASSWORD": "bot-password-for-the-test",
    "ZSM_OFFICER_PASSWORD": "officer-password-for-the-test",
    "ZSM_BOT_AUDIT_KEY": "audit-key-for-the-test-0123456789abcdef",
}
VAR = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[?-])([^}]*))?\}")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${VAR}``, ``${VAR:?message}`` and ``${VAR:-default}``; a required variable that is missing fails."""
    def one(m: re.Match[str]) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if env.get(name):
            return env[name]
        if op.endswith("?"):
            raise AssertionError(f"compose would refuse: {name} is required ({arg})")
        return arg
    return VAR.sub(one, value)


class Stack:
    """The compose file with its container paths and host names mapped onto this machine."""

    def __init__(self, tmp: Path, hosts: dict[str, str]) -> None:
        self.compose: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
        self.tmp = tmp
        self.hosts = hosts
        self.mounts: dict[str, dict[str, Path]] = {}

    def service(self, name: str) -> dict[str, Any]:
        return dict(self.compose["services"][name])

    def mounts_of(self, name: str) -> dict[str, Path]:
        """Container path -> host path: named volumes are folders under tmp, bind mounts the checkout's file."""
        if name not in self.mounts:
            out: dict[str, Path] = {}
            for spec in self.service(name).get("volumes", []):
                src, dst = spec.split(":")[:2]
                if src.startswith("./"):
                    out[dst] = REPO / src[2:]
                else:
                    out[dst] = self.tmp / "volumes" / src
                    out[dst].mkdir(parents=True, exist_ok=True)
            self.mounts[name] = out
        return self.mounts[name]

    def map_text(self, name: str, text: str) -> str:
        for dst, src in sorted(self.mounts_of(name).items(), key=lambda kv: -len(kv[0])):
            text = text.replace(dst, str(src))
        for host, local in self.hosts.items():
            text = text.replace(host, local)
        return text

    def environment(self, name: str) -> dict[str, str]:
        env = self.service(name).get("environment", {})
        return {k: self.map_text(name, interpolate(str(v), SECRETS)) for k, v in env.items()}


@pytest.fixture(scope="module")
def zsm_synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synapse]:
    server = Synapse(tmp_path_factory.mktemp("synapse-compose"), server_name="zsm.localhost")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run(cmd: list[str], *, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL)


async def officer_client(url: str, user_id: str, password: str, store: Path) -> Officer:
    store.mkdir(parents=True, exist_ok=True)
    client = AsyncClient(url, user_id, store_path=str(store),
                         config=AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False))
    resp = await client.login(password, device_name="officer")
    assert isinstance(resp, LoginResponse), resp
    officer = Officer(client)
    await officer.start()
    return officer


async def wait_healthy(cmd: list[str], env: dict[str, str], bot: subprocess.Popen[bytes], log: Path) -> None:
    """Compose's healthcheck: the command exits 0 (retried like compose retries it, generously)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert bot.poll() is None, f"the bot stopped: {log.read_text()[-3000:]}"
        proc = await asyncio.to_thread(run, cmd, env=env)
        if proc.returncode == 0:
            return
        await asyncio.sleep(1)
    raise AssertionError(f"healthcheck never passed: {log.read_text()[-3000:]}")


async def test_compose_stack_answers_ping_and_check_as_the_image_does(zsm_synapse: Synapse, tmp_path: Path) -> None:
    # --- the image: the wheel in a fresh venv, as the Dockerfile installs it ---------------------------------
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "pip wheel" in dockerfile and "python -m venv /opt/zsm-bot" in dockerfile
    assert "COPY constraints/bot.txt /dist/constraints.txt" in dockerfile and "-c /dist/constraints.txt" in dockerfile
    assert "ENV PATH=/opt/zsm-bot/bin:$PATH" in dockerfile and 'ENTRYPOINT ["zsm-bot"]' in dockerfile
    wheel = await asyncio.to_thread(build_wheel, tmp_path)
    venv = tmp_path / "opt-zsm-bot"
    proc = run([sys.executable, "-m", "venv", "--without-pip", str(venv)], env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    await asyncio.to_thread(install, venv / "bin" / "python", wheel)
    image_env = clean_env(venv)  # PATH=/opt/zsm-bot/bin:$PATH; nothing of the checkout

    db_url, db_name = await pg.create_database()
    smtp_port, http_port = free_port(), free_port()
    stack = Stack(tmp_path, {
        "http://synapse:8008": zsm_synapse.url,
        'host = "mail"': 'host = "127.0.0.1"',
        "port = 1025": f"port = {smtp_port}",
        "port = 8080": f"port = {http_port}",
        "127.0.0.1:8080": f"127.0.0.1:{http_port}",
    })
    # The configuration file as the container sees it: container paths -> volumes, host names -> loopback.
    etc = tmp_path / "etc-zsm-bot"
    etc.mkdir()
    template = etc / "zsm-bot.toml"
    template.write_text(stack.map_text("bot", (REPO / "config/compose/zsm-bot.toml").read_text(encoding="utf-8")))
    for name in ("bot", "bootstrap"):
        stack.mounts_of(name)["/etc/zsm-bot/zsm-bot.toml"] = template

    smtp: SmtpServer | None = None
    bot: subprocess.Popen[bytes] | None = None
    officer: Officer | None = None
    try:
        # --- mail-cert: its entrypoint, as compose runs it ----------------------------------------------------
        cert_svc = stack.service("mail-cert")
        cmd = [stack.map_text("mail-cert", a) for a in cert_svc["entrypoint"]]
        proc = run(cmd, env=image_env)
        assert proc.returncode == 0, proc.stderr
        certs = stack.mounts_of("mail-cert")["/certs"]
        assert (certs / "cert.pem").is_file() and (certs / "key.pem").is_file()
        assert "certificaat bestaat al" in run(cmd, env=image_env).stdout  # idempotent: a restart keeps it
        # Mailpit's settings in compose: STARTTLS required, with that certificate.
        mail_env = stack.service("mail")["environment"]
        assert mail_env["MP_SMTP_REQUIRE_STARTTLS"] == "true" and mail_env["MP_SMTP_TLS_CERT"] == "/certs/cert.pem"
        smtp = SmtpServer(certs / "cert.pem", certs / "key.pem", smtp_port, starttls=True).start()

        # --- bootstrap: entrypoint + command + environment of the compose service ----------------------------
        boot = stack.service("bootstrap")
        cmd = [stack.map_text("bootstrap", a) for a in [*boot["entrypoint"], *boot["command"]]]
        boot_env = {**image_env, **stack.environment("bootstrap")}
        first = await asyncio.to_thread(run, cmd, env=boot_env)
        assert first.returncode == 0, first.stdout + first.stderr
        again = await asyncio.to_thread(run, cmd, env=boot_env)  # compose runs it on every `up`
        assert again.returncode == 0, again.stdout + again.stderr
        assert "bestond al" in again.stdout
        rendered = stack.mounts_of("bootstrap")["/var/lib/zsm-bot"] / "zsm-bot.toml"
        room_id = re.search(r'^rooms = \["(![^"]+)"\]', rendered.read_text(), re.MULTILINE)
        assert room_id, rendered.read_text()
        assert f"= {room_id.group(1)}" in first.stdout and "#zsm-afstemming:zsm.localhost" in first.stdout

        # --- the bot: ENTRYPOINT ["zsm-bot"] + compose command, compose environment, WORKDIR -------------------
        svc = stack.service("bot")
        bot_env = {**image_env, **stack.environment("bot")}
        bot_env["ZSM_BOT_DATABASE_URL"] = db_url  # the compose URL's server is the local test PostgreSQL
        assert stack.environment("bot")["ZSM_BOT_CONFIG"] == str(rendered)
        log = tmp_path / "bot.log"
        workdir = stack.mounts_of("bot")["/var/lib/zsm-bot"]
        bot = subprocess.Popen(["zsm-bot", *svc["command"]], env=bot_env, cwd=workdir, stdin=subprocess.DEVNULL,
                               stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        health = [stack.map_text("bot", a) for a in svc["healthcheck"]["test"][1:]]
        await wait_healthy(health, image_env, bot, log)

        # --- the officer, with the password the bootstrap registered ------------------------------------------
        officer = await officer_client(zsm_synapse.url, "@officier:zsm.localhost", SECRETS["ZSM_OFFICER_PASSWORD"],
                                       tmp_path / "officer-store")
        room = room_id.group(1)
        await officer.wait_member(room, "@zsm-bot:zsm.localhost", timeout=90)
        ping = await officer.send(room, "!ping")
        assert (await officer.wait_reply(ping, timeout=90)).body == "pong"
        check = await officer.send(room, "!check 123456782")
        answer = await officer.wait_reply(check, timeout=60)
        assert "******782" in answer.body and answer.decrypted, answer.body
        referral = await officer.send(room, "!aanmelden 123456782 Utrecht huiselijk geweld")
        await officer.wait_reply(referral, timeout=60)
        deadline = time.monotonic() + 90
        while not smtp.collector.received and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert smtp.collector.received, f"no mail over STARTTLS: {log.read_text()[-3000:]}"
        assert "Traceback" not in log.read_text()
    finally:
        if officer is not None:
            await officer.close()
        if bot is not None:
            bot.send_signal(signal.SIGTERM)
            try:
                bot.wait(timeout=30)
            except subprocess.TimeoutExpired:
                bot.kill()
                bot.wait()
        if smtp is not None:
            smtp.stop()
        await pg.drop_database(db_name)


def test_interpolation_refuses_a_missing_secret() -> None:
    """The test's own stand-in for compose refuses like compose does (else the test above would prove little)."""
    with pytest.raises(AssertionError, match="ZSM_BOT_AUDIT_KEY is required"):
        interpolate("${ZSM_BOT_AUDIT_KEY:?set it}", {})
    assert interpolate("a${X:-b}c", {}) == "abc"
