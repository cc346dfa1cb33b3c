"""Login tokens of the YAPTIDE face: JWTs signed with keys that outlive a restart.

The keys come from ``[yaptide] jwt_secret``, or are created once in the data directory
(``secrets/signing-keys.json``, mode 0600) and read by every later start and by every server
process sharing the directory. Each key has an id (``kid``): the current key signs, and every
key listed verifies, so a key can be rotated without logging anybody out.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt

from cyclotron.errors import ConfigError, Unauthorized

if TYPE_CHECKING:
    from cyclotron.settings import Settings

ALGORITHM = "HS256"
KEYS_FILE = Path("secrets") / "signing-keys.json"
CONFIGURED_KID = "configured"
EXPIRED_MESSAGE = "Your login has expired. Please log in again."


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    login_id: str
    typ: str
    jti: str
    expires: datetime


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

    def encode(self, claims: dict[str, Any]) -> str:
        return jwt.encode(
            claims, self._keys[self.current], algorithm=ALGORITHM, headers={"kid": self.current}
        )

    def decode(self, token: str) -> dict[str, Any]:
        """Verified claims; Unauthorized for anything forged, expired or unreadable."""
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


def login_id_of(keys: SigningKeys, token: str) -> str | None:
    """The login a genuine token belongs to, even an expired one (logout accepts those)."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        key = keys.key(str(kid))
        if key is None:
            return None
        claims = jwt.decode(token, key, algorithms=[ALGORITHM], options={"verify_exp": False})
    except jwt.PyJWTError:
        return None
    sid = claims.get("sid")
    return sid if isinstance(sid, str) else None


def issue(
    keys: SigningKeys, user_id: int, login_id: str, typ: str, now: datetime, expires: datetime
) -> tuple[str, TokenClaims]:
    jti = uuid.uuid4().hex
    token = keys.encode(
        {
            "sub": str(user_id),
            "sid": login_id,
            "typ": typ,
            "iat": int(now.timestamp()),
            "exp": int(expires.timestamp()),
            "jti": jti,
        }
    )
    return token, TokenClaims(user_id, login_id, typ, jti, expires)


def read(keys: SigningKeys, token: str, typ: str) -> TokenClaims:
    """The claims of a valid token of the given type, or Unauthorized."""
    claims = keys.decode(token)
    if claims.get("typ") != typ:
        raise Unauthorized(EXPIRED_MESSAGE)
    try:
        user_id = int(claims["sub"])
    except (TypeError, ValueError) as exc:
        raise Unauthorized(EXPIRED_MESSAGE) from exc
    expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
    return TokenClaims(user_id, str(claims["sid"]), typ, str(claims["jti"]), expires)
