"""API keys: stored only as SHA-256 digests, compared in constant time, never logged."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from cyclotron.domain.records import ACCOUNT_OWNERS, ANONYMOUS_ADMIN, Caller, account_owner
from cyclotron.errors import InputError, NotFound, Unauthorized
from cyclotron.services.core import Core
from cyclotron.storage.tables import ApiKeyRow, UserRow, utcnow

KEY_PREFIX = "cyc_"


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    user_id: int
    admin: bool
    label: str
    created_at: datetime
    revoked_at: datetime | None


def authenticate(core: Core, key: str | None) -> Caller:
    """The caller a key belongs to; everyone is an admin when authentication is off."""
    settings = core.settings
    if not settings.auth_enabled:
        return ANONYMOUS_ADMIN
    if not key:
        raise Unauthorized("Missing API key")
    digest = key_digest(key)
    found: Caller | None = None
    admin_key = settings.api_key
    if admin_key is not None and hmac.compare_digest(
        digest, key_digest(admin_key.get_secret_value())
    ):
        found = Caller(user_id=0, admin=True)
    for entry in settings.auth.keys:
        if hmac.compare_digest(digest, entry.sha256) and found is None:
            found = Caller(user_id=entry.user_id, admin=entry.admin)
    if found is not None:
        return found
    with core.db.transaction(write=False) as session:
        row = session.scalar(
            select(ApiKeyRow).where(ApiKeyRow.sha256 == digest, ApiKeyRow.revoked_at.is_(None))
        )
        if row is not None and hmac.compare_digest(digest, row.sha256):
            return Caller(user_id=row.user_id, admin=row.admin)
    raise Unauthorized("Unknown API key")


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(row.id, row.user_id, row.admin, row.label, row.created_at, row.revoked_at)


def create_key(
    core: Core, user_id: int, admin: bool = False, label: str = ""
) -> tuple[str, ApiKeyInfo]:
    """A new key of a key-only user; its plain text is returned once and never stored."""
    if not 0 <= user_id < ACCOUNT_OWNERS:
        raise InputError(
            f"a key-only user id is below {ACCOUNT_OWNERS}; a YAPTIDE account's key is made "
            "with --account"
        )
    return _stored_key(core, user_id, admin, label)


def create_account_key(
    core: Core, username: str, provider: str = "local", admin: bool = False, label: str = ""
) -> tuple[str, ApiKeyInfo]:
    """A new key that acts as a YAPTIDE account: it sees and submits that account's jobs."""
    with core.db.transaction(write=False) as session:
        account = session.scalar(
            select(UserRow.id).where(UserRow.username == username, UserRow.provider == provider)
        )
    if account is None:
        raise NotFound(f"no {provider} account named {username!r}")
    return _stored_key(core, account_owner(account), admin, label)


def _stored_key(core: Core, user_id: int, admin: bool, label: str) -> tuple[str, ApiKeyInfo]:
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with core.db.transaction() as session:
        row = ApiKeyRow(
            sha256=key_digest(key), user_id=user_id, admin=admin, label=label, created_at=utcnow()
        )
        session.add(row)
        session.flush()
        return key, _info(row)


def list_keys(core: Core) -> list[ApiKeyInfo]:
    with core.db.transaction(write=False) as session:
        return [_info(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]


def revoke_key(core: Core, key_id: int) -> ApiKeyInfo:
    with core.db.transaction() as session:
        row = session.get(ApiKeyRow, key_id)
        if row is None:
            raise NotFound(f"no API key with id {key_id}")
        if row.revoked_at is None:
            row.revoked_at = utcnow()
        session.flush()
        return _info(row)
