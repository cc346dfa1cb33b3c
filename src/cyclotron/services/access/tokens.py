"""Login tokens of the YAPTIDE face: JWTs signed with the server's signing keys.

The keys (:class:`cyclotron.signing.SigningKeys`) outlive a restart and may be rotated: the
current key signs, and every key listed verifies, so nobody is logged out by a rotation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from cyclotron.errors import Unauthorized
from cyclotron.signing import ALGORITHM, EXPIRED_MESSAGE, SigningKeys


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    login_id: str
    typ: str
    jti: str
    expires: datetime


def login_id_of(keys: SigningKeys, token: str) -> str | None:
    """The login a genuine token belongs to, even an expired one (logout accepts those)."""
    import jwt  # here, not at start-up: see SigningKeys.encode

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
