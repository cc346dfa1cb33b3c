"""The server's signing keys, and the per-task tokens derived from them.

    SigningKeys    the keys that sign login JWTs and derive every other secret; they outlive
                   a restart and are shared by every server process using the data directory
    TaskTokens     what a remote worker shows to report on one attempt of one task

The keys come from ``[yaptide] jwt_secret``, or are created once in the data directory
(``secrets/signing-keys.json``, mode 0600) and read by every later start and by every server
process sharing the directory. Each key has an id (``kid``): the current key signs, and every
key listed verifies, so a key can be rotated without logging anybody out.

A task token is an HMAC of ``job/index/attempt`` under a key derived from the signing keys, so
every server process sharing the keys verifies it without storing anything, and it stops
working once the task is handed out again (a new attempt). The key id travels with it, so
rotating the signing keys keeps the tokens of running tasks valid.

Both sit on the ground floor: the services (logins, update keys) and the executors (the
``celery`` executor issues task tokens) use them alike.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cyclotron.errors import ConfigError, Unauthorized

if TYPE_CHECKING:
    from cyclotron.settings import Settings

ALGORITHM = "HS256"
KEYS_FILE = Path("secrets") / "signing-keys.json"
CONFIGURED_KID = "configured"
EXPIRED_MESSAGE = "Your login has expired. Please log in again."
TASK_TOKEN_PURPOSE = b"cyclotron task token v1"
INVALID_TASK_TOKEN = "Invalid task token"


class SigningKeys:
    def __init__(self, current: str, keys: dict[str, bytes]) -> None:
        if current not in keys:
            raise ConfigError(f"signing key {current!r} is not among the stored keys")
        self.current = current
        self._keys = keys

    @classmethod
    def from_secret(cls, secret: str) -> SigningKeys:
        return cls(CONFIGURED_KID, {CONFIGURED_KID: secret.encode("utf-8")})

    @classmethod
    def of_server(cls, settings: Settings) -> SigningKeys:
        """The configured ``[yaptide] jwt_secret``, else the keys kept in the data directory."""
        secret = settings.yaptide.jwt_secret
        if secret is not None:
            return cls.from_secret(secret.get_secret_value())
        return cls.in_directory(settings.server.data_dir)

    @classmethod
    def in_directory(cls, data_dir: Path) -> SigningKeys:
        """The keys stored under ``data_dir``, created on first use (by one process only)."""
        path = data_dir / KEYS_FILE
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            kid = uuid.uuid4().hex[:12]
            document = {"current": kid, "keys": {kid: secrets.token_hex(32)}}
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                json.dump(document, handle)
            try:
                os.link(temporary, path)  # fails if another process created it first
            except FileExistsError:
                pass
            finally:
                temporary.unlink()
        try:
            document = json.loads(path.read_text())
            keys = {str(k): bytes.fromhex(v) for k, v in document["keys"].items()}
            return cls(str(document["current"]), keys)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"cannot read the signing keys in {path}: {exc}") from exc

    def key(self, kid: str) -> bytes | None:
        return self._keys.get(kid)

    def kids(self) -> list[str]:
        """Every key id that verifies, the current one first."""
        return [self.current, *(k for k in self._keys if k != self.current)]

    # PyJWT is imported where a login token is made or read: it loads the cryptography
    # package, which a server whose YAPTIDE face is never logged into does not need.
    def encode(self, claims: dict[str, Any]) -> str:
        import jwt

        return jwt.encode(
            claims, self._keys[self.current], algorithm=ALGORITHM, headers={"kid": self.current}
        )

    def decode(self, token: str) -> dict[str, Any]:
        """Verified claims; Unauthorized for anything forged, expired or unreadable."""
        import jwt

        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = self.key(str(kid))
            if key is None:
                raise Unauthorized(EXPIRED_MESSAGE)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                options={"require": ["sub", "sid", "typ", "exp", "iat", "jti"]},
            )
            return claims
        except jwt.PyJWTError as exc:
            raise Unauthorized(EXPIRED_MESSAGE) from exc


class TaskTokens:
    """Issues and checks the token of one attempt of one task."""

    def __init__(self, keys: SigningKeys) -> None:
        self._keys = keys

    def _mac(self, kid: str, job_id: str, index: int, attempt: int) -> str | None:
        secret = self._keys.key(kid)
        if secret is None:
            return None
        derived = hmac.new(secret, TASK_TOKEN_PURPOSE, hashlib.sha256).digest()
        message = f"{job_id}/{index}/{attempt}".encode()
        digest = hmac.new(derived, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def issue(self, job_id: str, index: int, attempt: int) -> str:
        kid = self._keys.current
        mac = self._mac(kid, job_id, index, attempt)
        assert mac is not None
        return f"{kid}.{mac}"

    def check(self, token: str | None, job_id: str, index: int, attempt: int) -> None:
        """Raise Unauthorized unless ``token`` was issued for exactly this attempt."""
        kid, _, mac = (token or "").partition(".")
        expected = self._mac(kid, job_id, index, attempt) if kid and mac else None
        if expected is None or not hmac.compare_digest(expected.encode(), mac.encode()):
            raise Unauthorized(INVALID_TASK_TOKEN)
