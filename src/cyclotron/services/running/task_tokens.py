"""Per-task tokens: what a remote worker shows to report on one attempt of one task.

A token is an HMAC of ``job/index/attempt`` under a key derived from the server's signing
keys, so every server process sharing the keys verifies it without storing anything, and it
stops working once the task is handed out again (a new attempt). The key id travels with it,
so rotating the signing keys keeps the tokens of running tasks valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cyclotron.errors import Unauthorized
from cyclotron.services.access.tokens import SigningKeys

PURPOSE = b"cyclotron task token v1"
INVALID = "Invalid task token"


class TaskTokens:
    def __init__(self, keys: SigningKeys) -> None:
        self._keys = keys

    def _mac(self, kid: str, job_id: str, index: int, attempt: int) -> str | None:
        secret = self._keys.key(kid)
        if secret is None:
            return None
        derived = hmac.new(secret, PURPOSE, hashlib.sha256).digest()
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
            raise Unauthorized(INVALID)
