"""The ``Idempotency-Key`` header of the submission routes, shared by the faces.

A client sends one key per submission (any text of 1 to 255 printable ASCII characters, or
that text as a structured-field string in double quotes) and sends it again with a retry.
The server keeps the key with the digest of the request as the face read it (the route, the
body's JSON values with their keys sorted; for a multipart body its fields and each file's
name and SHA-256), so a retry matches its first try whatever multipart boundary or key order
its client used.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Header

from cyclotron.errors import InputError
from cyclotron.services.intake.request import IdempotencyKey, IntakeRequest

HEADER = "Idempotency-Key"
MAX_KEY = 255
DESCRIPTION = (
    "One key per submission, sent again with each retry of it (1 to 255 printable ASCII "
    "characters). The same key and request from the same owner within 24 h answer the first "
    "submission again (same status and body) and store nothing; the same key with another "
    "request is refused with 409."
)
KeyHeader = Annotated[str | None, Header(alias=HEADER, description=DESCRIPTION)]


def idempotency_key(value: str | None, route: str, request: Any) -> IdempotencyKey | None:
    """The key a request carries (the header's ``value``) with the digest of ``request`` (the
    JSON values the face read) sent to ``route``; None without a key, InputError (located at
    the header) for a malformed one."""
    if value is None:
        return None
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not 1 <= len(key) <= MAX_KEY or not all(" " <= c <= "~" for c in key):
        raise InputError(f"must be 1 to {MAX_KEY} printable ASCII characters", (HEADER,))
    text = json.dumps([route, request], sort_keys=True, separators=(",", ":"), default=str)
    return IdempotencyKey(key, hashlib.sha256(text.encode("utf-8")).hexdigest())


def with_key(intake: IntakeRequest, value: str | None, route: str, request: Any) -> IntakeRequest:
    """``intake`` with the key of the request (``idempotency_key``), if it carries one."""
    return replace(intake, idempotency=idempotency_key(value, route, request))
