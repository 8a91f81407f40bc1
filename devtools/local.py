"""``scripts/run-local``: the embedded default, for a first look and for demos.

Starts (and on first run installs) a Synapse on 127.0.0.1, registers the bot and an officer, creates the encrypted
room ``#zsm-afstemming:localhost`` (through ``devtools.bootstrap``, the same steps as the compose stack), starts a
mail catcher with STARTTLS and writes ``var/local/zsm-bot.toml``; then runs the bot on SQLite.

Everything lives under ``var/local`` (accounts, room, crypto store, database, mail), so the next run reuses it;
delete that folder for a fresh start. The demo data: a few fictitious markings (``var/local/markeringen.csv``,
imported on every start) and, only in this run-local configuration, the doelgroep "huiselijk geweld" agreed as
prioritised for veiligheidshuis Utrecht, so ``!check 123456782`` and ``!aanvraag 123456782`` work at once.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from contextlib import suppress
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from devtools.bootstrap import Room, bootstrap
from devtools.synapse import SHARED_SECRET, Synapse, free_port

ROOT = Path(__file__).resolve().parents[1]
# Overridable for the tests, which run it beside other work: the state folder and the ports.
VAR = Path(os.environ.get("ZSM_LOCAL_STATE", ROOT / "var" / "local"))
PORT = int(os.environ.get("ZSM_LOCAL_SYNAPSE_PORT", "8448"))
HTTP_PORT = int(os.environ.get("ZSM_LOCAL_HTTP_PORT", "8080"))
ALIAS = "zsm-afstemming"
OFFICER = "@officier:localhost"
BOT = "@zsm-bot:localhost"
CERT_SCRIPT = ROOT / "deploy" / "compose" / "mail-cert.sh"

# Fictitious people (valid by the elfproef, in no real registry): one known to Utrecht in the prioritised
# doelgroep (!aanvraag works), one known to Utrecht outside it (!aanvraag refuses and says why).
DEMO_MARKINGS = (
    ("123456782", "1990-05-17", "utrecht", "huiselijk geweld", "actief", "Voorwaardelijk sepot met meldplicht.",
     "VWSEP", 30, "J. de Regisseur, 030-1234567"),
    ("111222333", "1985-02-03", "utrecht", "veelpleger", "actief", "Taakstraf, plan van aanpak loopt.",
     "TAAK", 200, "M. de Vries, 030-7654321"),
)


def write_markings(path: Path, today: date) -> None:
    header = "bsn;skn;geboortedatum;veiligheidshuis;doelgroep;status;advies;geadviseerde_afdoening;advies_datum;" \
             "regisseur;huishouden"
    rows = [";".join([bsn, "", born, vh, doelgroep, status, advies, afdoening,
                      (today - timedelta(days=age)).isoformat(), regisseur, ""])
            for bsn, born, vh, doelgroep, status, advies, afdoening, age, regisseur in DEMO_MARKINGS]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")


def load_state() -> dict[str, Any]:
    state_file = VAR / "state.json"
    state: dict[str, Any] = json.loads(state_file.read_text()) if state_file.exists() else {}
    state.setdefault("bot_password", secrets.token_urlsafe(16))
    state.setdefault("officer_password", secrets.token_urlsafe(9))
    state.setdefault("link_key", secrets.token_urlsafe(32))
    state_file.write_text(json.dumps(state))
    state_file.chmod(0o600)
    return state


def mail_catcher() -> tuple[Any, Path, int]:
    """aiosmtpd on loopback, STARTTLS required with a self-signed certificate (made once by the compose stack's
    script); every mail lands in the Maildir ``var/local/mail`` (``new/`` holds one file per mail)."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Mailbox

    certs = VAR / "mail-certs"
    certs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sh", str(CERT_SCRIPT), str(certs)], check=True, stdout=subprocess.DEVNULL)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(certs / "cert.pem", certs / "key.pem")
    port = free_port()
    controller = Controller(Mailbox(VAR / "mail"), hostname="127.0.0.1", port=port, tls_context=ctx,
                            require_starttls=True)
    controller.start()
    return controller, certs / "cert.pem", port


def write_config(path: Path, matrix: str, state: dict[str, Any], *, mail_port: int, ca: Path, http: bool) -> None:
    path.write_text(f"""# Written by scripts/run-local on every start; edit devtools/local.py instead.
{matrix}
[database]
url = "sqlite+aiosqlite:///var/zsm-bot.db"

[http]
enabled = {"true" if http else "false"}
port = {HTTP_PORT}

[logging]
level = "INFO"
format = "text"

[mail]
# The local catcher: STARTTLS verified against its own certificate; mails in var/local/mail/new/.
enabled = true
host = "127.0.0.1"
port = {mail_port}
tls = "starttls"
ca_bestand = "{ca}"
afzender = "zsm-terugkoppeling@localhost"
herroep_seconden = 30

[aanvraag]
link_sleutel = "{state['link_key']}"
basis_url = "http://127.0.0.1:{HTTP_PORT}"

# Run-local only: ZSM and veiligheidshuis Utrecht agreed "huiselijk geweld" as prioritised doelgroep.
[aanvraag.vh.utrecht]
doelgroepen = ["huiselijk geweld"]
termijn = "24u"

[users]
"{OFFICER}" = "ovj"
""", encoding="utf-8")


def import_markings(config: Path) -> None:
    from cli.main import main as cli

    markings = VAR / "markeringen.csv"
    write_markings(markings, date.today())
    if cli(["import", str(markings), "--config", str(config)]) != 0:
        raise SystemExit("demo-markeringen importeren mislukt; zie hierboven")


def prepare(state: dict[str, Any]) -> tuple[Synapse, Room]:
    synapse = Synapse(VAR / "synapse", port=PORT, rc_message={"per_second": 10, "burst_count": 50})
    first = not (synapse.data_dir / "homeserver.yaml").exists()
    print(f"Synapse starten op {synapse.url}" + (" (eerste keer: Synapse installeren, 1 tot 2 minuten)"
                                                 if first else "") + "...", flush=True)
    synapse.start(timeout=180)
    room = bootstrap(homeserver=synapse.url, shared_secret=SHARED_SECRET, bot_user=BOT,
                     bot_password=state["bot_password"], officer=OFFICER, officer_password=state["officer_password"],
                     alias_localpart=ALIAS, wait_seconds=60)
    return synapse, room


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--console", action="store_true", help="geen homeserver: commando's vanaf standaardinvoer")
    args = ap.parse_args()
    (VAR / "var").mkdir(parents=True, exist_ok=True)  # the SQLite database and the crypto store
    state = load_state()
    controller, ca, mail_port = mail_catcher()
    from cli.main import main as cli

    synapse: Synapse | None = None
    try:
        if args.console:
            config = VAR / "console.toml"
            write_config(config, f'[matrix]\nhomeserver = "http://127.0.0.1:9"\nuser_id = "{BOT}"\n', state,
                         mail_port=mail_port, ca=ca, http=False)
            import_markings(config)
            print("Console: typ commando's, bijvoorbeeld !help, !check 123456782 of !aanvraag 123456782 "
                  "feit: mishandeling partner in de woning voornemen: voorwaardelijk sepot "
                  f"(Ctrl-D stopt).\nMail: {VAR / 'mail' / 'new'}/ (een bestand per mail). Status: {VAR}/",
                  flush=True)
            return cli(["console", "--config", str(config), "--as", OFFICER])
        synapse, room = prepare(state)
        config = VAR / "zsm-bot.toml"
        write_config(config, f"""[matrix]
homeserver = "{synapse.url}"
user_id = "{BOT}"
device_id = "ZSMLOCAL"
password = "{state['bot_password']}"
store_path = "var/matrix-store"
rooms = ["{room.room_id}"]
""", state, mail_port=mail_port, ca=ca, http=True)
        import_markings(config)
        print(f"""
De bot start. Log in met een Matrix-client (bijvoorbeeld Element) op:
  homeserver:  {synapse.url}
  gebruiker:   officier
  wachtwoord:  {state['officer_password']}
  room:        {room.alias}   (room-id {room.room_id})
Typ in de room !help, !check 123456782 of
!aanvraag 123456782 feit: mishandeling partner in de woning voornemen: voorwaardelijk sepot. Stoppen: Ctrl-C.
Mail (terugkoppeling, aanmeldingen, adviesaanvragen): {VAR / 'mail' / 'new'}/, een bestand per mail.
Alle status (accounts, room, crypto-store, database, mail) staat in {VAR}/; verwijder die map voor een schone start.
Gezondheid: http://127.0.0.1:{HTTP_PORT}/healthz  metrics: http://127.0.0.1:{HTTP_PORT}/metrics
""", flush=True)
        return cli(["run", "--config", str(config)])
    finally:
        with suppress(Exception):
            controller.stop()
        if synapse is not None:
            synapse.stop()


if __name__ == "__main__":
    sys.exit(main())
