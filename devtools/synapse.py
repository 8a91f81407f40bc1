"""A throw-away Synapse on loopback: installed with pip into its own cached venv, started as a child process.

Used by the test harness, the benchmarks and ``scripts/run-local``. Rate limits are generous except
``rc_message``, which stays on so the bot's 429 handling is exercised; test users get an admin override.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devtools.bootstrap import register_user

SYNAPSE_VERSION = "1.163.2"
# In a checkout; an installed devtools (the wheel) has none and installs Synapse unconstrained.
SYNAPSE_LOCK = Path(__file__).resolve().parents[1] / "constraints" / "synapse.txt"
DEFAULT_VENV = Path(os.environ.get("ZSM_SYNAPSE_VENV", Path.home() / ".cache" / "zsm-bot" / "synapse-venv"))
SHARED_SECRET = "zsm-dev-shared-secret"
RELAXED = {"per_second": 10000, "burst_count": 100000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_venv(venv: Path = DEFAULT_VENV) -> Path:
    """Install Synapse once; later runs reuse the cached venv (about 20 s the first time). Its dependencies are the
    versions it was tested with (``constraints/synapse.txt`` of a checkout, written by ``scripts/lock``): Synapse pins
    few of its own, and a release of one of them published since must not break the harness. A changed lock
    installs again."""
    python = venv / "bin" / "python"
    lock = SYNAPSE_LOCK.read_bytes() if SYNAPSE_LOCK.exists() else b""
    marker = venv / f".synapse-{SYNAPSE_VERSION}-{hashlib.sha256(lock).hexdigest()[:12]}"
    if python.exists() and marker.exists():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    _pip_install(python, f"matrix-synapse=={SYNAPSE_VERSION}")
    marker.write_text(SYNAPSE_VERSION)
    return python


def _limits(rc_message: dict[str, float]) -> str:
    relaxed = json.dumps(RELAXED)
    names = ["rc_registration", "rc_joins_per_room", "rc_key_requests", "rc_3pid_validation", "rc_room_creation",
             "rc_media_create", "rc_admin_redaction", "rc_delayed_event_mgmt", "rc_reports", "rc_user_directory",
             "rc_profile"]
    lines = [f"rc_message: {json.dumps(rc_message)}"] + [f"{n}: {relaxed}" for n in names]
    lines += [
        f"rc_login: {{address: {relaxed}, account: {relaxed}, failed_attempts: {relaxed}}}",
        f"rc_joins: {{local: {relaxed}, remote: {relaxed}}}",
        f"rc_invites: {{per_room: {relaxed}, per_user: {relaxed}, per_issuer: {relaxed}}}",
        f"rc_presence: {{per_user: {relaxed}}}",
    ]
    return "\n".join(lines)


@dataclass
class Synapse:
    data_dir: Path
    port: int = field(default_factory=free_port)
    server_name: str = "localhost"
    rc_message: dict[str, float] = field(default_factory=lambda: {"per_second": 20, "burst_count": 40})
    python: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cfg = self.data_dir / "homeserver.yaml"
        if cfg.exists():
            return cfg
        (self.data_dir / "log.yaml").write_text(
            "version: 1\nformatters: {precise: {format: '%(asctime)s %(name)s %(levelname)s %(message)s'}}\n"
            f"handlers: {{file: {{class: logging.FileHandler, formatter: precise, "
            f"filename: {self.data_dir / 'homeserver.log'}}}}}\n"
            "root: {level: WARNING, handlers: [file]}\ndisable_existing_loggers: false\n"
        )
        key = base64.b64encode(os.urandom(32)).decode().rstrip("=")
        (self.data_dir / "signing.key").write_text(f"ed25519 a_{secrets.token_hex(2)} {key}\n")
        cfg.write_text(f"""server_name: "{self.server_name}"
public_baseurl: "{self.url}/"
pid_file: "{self.data_dir / 'homeserver.pid'}"
report_stats: false
listeners:
  - port: {self.port}
    bind_addresses: ['127.0.0.1']
    type: http
    tls: false
    x_forwarded: false
    resources: [{{names: [client], compress: false}}]
database: {{name: sqlite3, args: {{database: "{self.data_dir / 'homeserver.db'}"}}}}
log_config: "{self.data_dir / 'log.yaml'}"
media_store_path: "{self.data_dir / 'media'}"
signing_key_path: "{self.data_dir / 'signing.key'}"
macaroon_secret_key: "{secrets.token_hex(16)}"
form_secret: "{secrets.token_hex(16)}"
registration_shared_secret: "{SHARED_SECRET}"
bcrypt_rounds: 4
enable_registration: false
trusted_key_servers: []
suppress_key_server_warning: true
federation_domain_whitelist: []
url_preview_enabled: false
presence: {{enabled: false}}
{_limits(self.rc_message)}
""")
        return cfg

    def start(self, timeout: float = 60.0) -> None:
        self.python = self.python or ensure_venv()
        cfg = self.write_config()
        log = open(self.data_dir / "stdout.log", "ab")  # noqa: SIM115 (lives as long as the child)
        self.process = subprocess.Popen(
            [str(self.python), "-m", "synapse.app.homeserver", "-c", str(cfg)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"synapse exited; see {self.data_dir / 'homeserver.log'}")
            if self.healthy():
                return
            time.sleep(0.1)
        raise RuntimeError("synapse did not become healthy in time")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:  # noqa: S310 (loopback)
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    # --- admin API -------------------------------------------------------------------------------
    def _post(self, path: str, body: dict[str, object], token: str | None = None) -> dict[str, object]:
        req = urllib.request.Request(f"{self.url}{path}", data=json.dumps(body).encode(), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/json"})
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 (loopback)
            return dict(json.loads(r.read()))

    def register(self, localpart: str, password: str, *, admin: bool = False) -> dict[str, object]:
        """Shared-secret registration; returns user_id and access_token."""
        made = register_user(self.url, SHARED_SECRET, localpart, password, admin=admin)
        if made is None:
            raise RuntimeError(f"user {localpart} exists already")
        return made

    def lift_rate_limit(self, admin_token: str, user_id: str) -> None:
        self.limit_rate(admin_token, user_id, per_second=0, burst=0)

    def limit_rate(self, admin_token: str, user_id: str, *, per_second: float, burst: int) -> None:
        """Per-user message rate (0 and 0: unlimited); a test sets it low so a 429 does not depend on speed."""
        self._post(f"/_synapse/admin/v1/users/{urllib.parse.quote(user_id)}/override_ratelimit",
                   {"messages_per_second": per_second, "burst_count": burst}, admin_token)


def ensure_postgres_driver(python: Path) -> None:
    """Synapse on PostgreSQL (the compose stack's set-up) needs psycopg2 in Synapse's venv; installed once."""
    probe = subprocess.run([str(python), "-c", "import psycopg2"], capture_output=True)
    if probe.returncode == 0:
        return
    _pip_install(python, "psycopg2-binary")


def _pip_install(python: Path, *packages: str) -> None:
    """Into Synapse's venv, at the versions of the lock where there is one (a checkout)."""
    constrained = ["-c", str(SYNAPSE_LOCK)] if SYNAPSE_LOCK.exists() else []
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *constrained,
                    *packages], check=True, stdout=subprocess.DEVNULL)
