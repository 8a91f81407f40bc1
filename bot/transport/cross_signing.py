"""Cross-signing of the bot's own device, which matrix-nio does not do.

Current Element clients refuse to share keys with devices their owner has not cross-signed, so the bot creates
its master, self-signing and user-signing keys once, keeps them encrypted in its store (AES-GCM, key derived with
scrypt from a secret in the environment), uploads the public parts with the account's credentials, and signs its
device with the self-signing key. At every start it checks the homeserver's copy and signs again when the
device keys changed or the signature is missing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from Crypto.Cipher import AES
from Crypto.PublicKey import ECC
from Crypto.Signature import eddsa

log = logging.getLogger(__name__)

USAGES = ("master", "self_signing", "user_signing")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def canonical(obj: dict[str, Any]) -> bytes:
    """Matrix canonical JSON of an object without its signatures and unsigned parts."""
    clean = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def verify(obj: dict[str, Any], signer_user: str, key_id: str, public_b64: str) -> bool:
    """Check one signature on a signed JSON object (used by tests and by the start-up check)."""
    sig = obj.get("signatures", {}).get(signer_user, {}).get(key_id)
    if not sig:
        return False
    key = eddsa.import_public_key(unb64(public_b64))
    try:
        eddsa.new(key, "rfc8032").verify(canonical(obj), unb64(sig))
    except ValueError:
        return False
    return True


@dataclass
class SigningKey:
    seed: bytes

    @property
    def _key(self) -> Any:
        return eddsa.import_private_key(self.seed)

    @property
    def public(self) -> str:
        return b64(self._key.public_key().export_key(format="raw"))

    @property
    def key_id(self) -> str:
        return f"ed25519:{self.public}"

    def sign(self, obj: dict[str, Any], user_id: str) -> dict[str, Any]:
        sig = b64(eddsa.new(self._key, "rfc8032").sign(canonical(obj)))
        signed = dict(obj)
        signatures = {u: dict(s) for u, s in obj.get("signatures", {}).items()}
        signatures.setdefault(user_id, {})[self.key_id] = sig
        signed["signatures"] = signatures
        return signed

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(bytes(ECC.generate(curve="ed25519").seed))


class KeyFile:
    """The three private keys, encrypted at rest."""

    def __init__(self, path: Path, secret: bytes) -> None:
        self.path = path
        self.secret = secret

    def _aes_key(self, salt: bytes) -> bytes:
        return hashlib.scrypt(self.secret, salt=salt, n=2**14, r=8, p=1, dklen=32)

    def load(self) -> dict[str, SigningKey] | None:
        if not self.path.exists():
            return None
        blob = json.loads(self.path.read_text())
        salt, nonce, tag, data = (unb64(blob[k]) for k in ("salt", "nonce", "tag", "data"))
        cipher = AES.new(self._aes_key(salt), AES.MODE_GCM, nonce=nonce)
        plain = json.loads(cipher.decrypt_and_verify(data, tag))
        return {u: SigningKey(unb64(plain[u])) for u in USAGES}

    def save(self, keys: dict[str, SigningKey]) -> None:
        salt, nonce = os.urandom(16), os.urandom(12)
        cipher = AES.new(self._aes_key(salt), AES.MODE_GCM, nonce=nonce)
        data, tag = cipher.encrypt_and_digest(json.dumps({u: b64(keys[u].seed) for u in USAGES}).encode())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"salt": b64(salt), "nonce": b64(nonce), "tag": b64(tag), "data": b64(data)}, fh)
        tmp.replace(self.path)


class CrossSigningError(Exception):
    pass


class CrossSigner:
    def __init__(self, homeserver: str, user_id: str, device_id: str, access_token: str, keyfile: KeyFile,
                 password: str | None) -> None:
        self.homeserver = homeserver.rstrip("/")
        self.user_id = user_id
        self.device_id = device_id
        self.token = access_token
        self.keyfile = keyfile
        self.password = password

    async def _call(self, http: aiohttp.ClientSession, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        async with http.post(f"{self.homeserver}{path}", json=body,
                             headers={"Authorization": f"Bearer {self.token}"}) as r:
            return r.status, dict(await r.json())

    async def ensure(self) -> str:
        """Make sure the account has our cross-signing keys and our device carries the self-signing signature.

        Returns what was done: 'ok', 'device signed' or 'keys uploaded'."""
        keys = self.keyfile.load()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            status, current = await self._call(http, "/_matrix/client/v3/keys/query",
                                               {"device_keys": {self.user_id: []}})
            if status != 200:
                raise CrossSigningError(f"keys/query: HTTP {status}")
            server_master = current.get("master_keys", {}).get(self.user_id)
            did = "ok"
            if keys is None or server_master is None or \
                    keys["master"].key_id not in server_master.get("keys", {}):
                if keys is None:
                    keys = {u: SigningKey.generate() for u in USAGES}
                    self.keyfile.save(keys)
                await self._upload_keys(http, keys)
                did = "keys uploaded"
            device = current.get("device_keys", {}).get(self.user_id, {}).get(self.device_id)
            if device is None:
                raise CrossSigningError("own device keys not on the homeserver yet")
            ssk = keys["self_signing"]
            if not verify(device, self.user_id, ssk.key_id, ssk.public):
                signed = ssk.sign(device, self.user_id)
                upload = {self.user_id: {self.device_id: {**signed, "signatures": {
                    self.user_id: {ssk.key_id: signed["signatures"][self.user_id][ssk.key_id]}}}}}
                status, body = await self._call(http, "/_matrix/client/v3/keys/signatures/upload", upload)
                if status != 200 or body.get("failures"):
                    raise CrossSigningError(f"signatures/upload: HTTP {status} {sorted(body.get('failures', {}))}")
                did = "device signed" if did == "ok" else did
        return did

    async def _upload_keys(self, http: aiohttp.ClientSession, keys: dict[str, SigningKey]) -> None:
        def key_obj(usage: str) -> dict[str, Any]:
            k = keys[usage]
            return {"user_id": self.user_id, "usage": [usage], "keys": {k.key_id: k.public}}

        master = key_obj("master")
        body = {
            "master_key": master,
            "self_signing_key": keys["master"].sign(key_obj("self_signing"), self.user_id),
            "user_signing_key": keys["master"].sign(key_obj("user_signing"), self.user_id),
        }
        status, resp = await self._call(http, "/_matrix/client/v3/keys/device_signing/upload", body)
        if status == 401 and "session" in resp:
            if not self.password:
                raise CrossSigningError("the homeserver asks for the password to replace cross-signing keys")
            body["auth"] = {"type": "m.login.password", "session": resp["session"], "password": self.password,
                            "identifier": {"type": "m.id.user", "user": self.user_id}}
            status, resp = await self._call(http, "/_matrix/client/v3/keys/device_signing/upload", body)
        if status != 200:
            raise CrossSigningError(f"device_signing/upload: HTTP {status} {resp.get('errcode', '')}")
