"""Accounts of the YAPTIDE face: registration, passwords, logins and their tokens.

Passwords are hashed with argon2id; werkzeug ``scrypt:``/``pbkdf2:`` hashes imported from an
original YAPTIDE database still verify and are replaced by argon2 at the next login. A login is
a row (its id is the tokens' ``sid``): refreshing rotates both tokens, the replaced refresh
token keeps a short grace window for tabs that refresh together, and presenting it after that
window revokes the whole login.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from cyclotron.domain.records import account_owner
from cyclotron.domain.text import document_problems, text_problem
from cyclotron.errors import Forbidden, InputError, RateLimited, Unauthorized
from cyclotron.services.access import tokens
from cyclotron.services.core import Core
from cyclotron.settings import YaptideSettings
from cyclotron.signing import EXPIRED_MESSAGE, SigningKeys
from cyclotron.storage.tables import LoginRow, UserRow, utcnow

LOCAL = "local"
KEYCLOAK = "keycloak"
MAX_USERNAME = 255
MAX_PASSWORD = 1024
INVALID_LOGIN = "Invalid login or password"

_hasher = PasswordHasher()


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    provider: str
    cluster_access: bool
    profile: dict[str, Any]
    created_at: datetime

    @property
    def owner_id(self) -> int:
        """Who the account's jobs belong to (never an API-key-only user's id)."""
        return account_owner(self.id)


@dataclass(frozen=True)
class IssuedLogin:
    """Tokens handed to the client, with their expiry times."""

    access_token: str
    access_expires: datetime
    refresh_token: str | None = None
    refresh_expires: datetime | None = None


# The user of a login that stands (not revoked, and the user's own).
_LOGIN_USER = (
    select(
        UserRow.id,
        UserRow.username,
        UserRow.provider,
        UserRow.cluster_access,
        UserRow.profile,
        UserRow.created_at,
    )
    .join(LoginRow, LoginRow.user_id == UserRow.id)
    .where(
        LoginRow.id == bindparam("login"),
        LoginRow.user_id == bindparam("user"),
        LoginRow.revoked_at.is_(None),
    )
)


def _record(row: UserRow) -> UserRecord:
    return UserRecord(
        row.id, row.username, row.provider, row.cluster_access, dict(row.profile), row.created_at
    )


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _werkzeug_matches(stored: str, password: str) -> bool:
    """Verify a werkzeug ``method$salt$hash`` password hash."""
    try:
        method, salt, expected = stored.split("$", 2)
        kind, *params = method.split(":")
        secret, salt_bytes = password.encode("utf-8"), salt.encode("utf-8")
        if kind == "scrypt":
            n, r, p = (int(x) for x in params)
            actual = hashlib.scrypt(
                secret, salt=salt_bytes, n=n, r=r, p=p, maxmem=132 * n * r * p
            ).hex()
        elif kind == "pbkdf2":
            digest, iterations = params[0], int(params[1])
            actual = hashlib.pbkdf2_hmac(digest, secret, salt_bytes, iterations).hex()
        else:
            return False
    except (ValueError, IndexError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def verify_password(stored: str | None, password: str) -> tuple[bool, bool]:
    """Whether the password matches, and whether the stored hash should be replaced."""
    if not stored:
        return False, False
    if stored.startswith("$argon2"):
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False, False
        return True, _hasher.check_needs_rehash(stored)
    return _werkzeug_matches(stored, password), True


def check_credentials(username: Any, password: Any, minimum: int | None = None) -> None:
    """400 for a missing, empty or non-text username or password (or a too short password)."""
    missing = [
        name
        for name, value in (("username", username), ("password", password))
        if not isinstance(value, str) or not value
    ]
    if missing:
        raise InputError(f"Missing keys in JSON payload: {', '.join(missing)}")
    assert isinstance(username, str) and isinstance(password, str)
    if len(username) > MAX_USERNAME or text_problem(username) is not None:
        raise InputError(f"username must be 1 to {MAX_USERNAME} printable characters")
    if len(password) > MAX_PASSWORD:
        raise InputError(f"password must be at most {MAX_PASSWORD} characters")
    if not _encodable(password):  # a lone surrogate: it cannot be hashed as UTF-8
        raise InputError("password must be valid Unicode text")
    if minimum is not None and len(password) < minimum:
        raise InputError(f"password must be at least {minimum} characters")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class _Attempts:
    """Failed logins per key within a sliding window, in this process."""

    limit: int
    window: float
    _seen: dict[str, deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            seen = self._seen.get(key)
            while seen and seen[0] <= now - self.window:
                seen.popleft()
            if seen and len(seen) >= self.limit:
                retry = int(seen[0] + self.window - now) + 1
                raise RateLimited(
                    f"Too many failed logins; try again in {retry} s", retry_after=retry
                )

    def failed(self, key: str) -> None:
        with self._lock:
            if len(self._seen) > 100_000:  # bounded memory under a spray of names
                self._seen.clear()
            self._seen.setdefault(key, deque()).append(time.monotonic())

    def clear(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)


class Accounts:
    """Users and logins over one core."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.settings: YaptideSettings = core.settings.yaptide
        self.keys = SigningKeys.of_server(core.settings)
        self._attempts = _Attempts(self.settings.login_attempts, self.settings.login_window_seconds)

    # -- users ---------------------------------------------------------------------------

    def add_user(
        self,
        username: Any,
        password: Any,
        *,
        cluster_access: bool = False,
        enforce_registration: bool = False,
    ) -> UserRecord:
        if enforce_registration and not self.settings.registration:
            raise Forbidden("Registration is disabled")
        check_credentials(username, password, self.settings.min_password_length)
        with self.core.db.transaction() as session:
            if _find_user(session, LOCAL, username) is not None:
                raise Forbidden("User existing")
            row = UserRow(
                username=username,
                provider=LOCAL,
                password_hash=hash_password(password),
                cluster_access=cluster_access,
                profile={},
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return _record(row)

    def list_users(self) -> list[UserRecord]:
        with self.core.db.transaction(write=False) as session:
            return [_record(r) for r in session.scalars(select(UserRow).order_by(UserRow.id))]

    def remove_user(self, username: str, provider: str = LOCAL) -> UserRecord:
        with self.core.db.transaction() as session:
            row = _find_user(session, provider, username)
            if row is None:
                raise InputError(f"no {provider} user named {username!r}")
            record = _record(row)
            session.delete(row)
            return record

    def set_cluster_access(self, username: str, allowed: bool, provider: str = LOCAL) -> None:
        with self.core.db.transaction() as session:
            row = _find_user(session, provider, username)
            if row is None:
                raise InputError(f"no {provider} user named {username!r}")
            row.cluster_access = allowed

    def upsert_keycloak_user(self, username: str, cluster_access: bool) -> UserRecord:
        with self.core.db.transaction() as session:
            row = _find_user(session, KEYCLOAK, username)
            if row is None:
                row = UserRow(username=username, provider=KEYCLOAK, profile={}, created_at=utcnow())
                session.add(row)
            row.cluster_access = cluster_access
            session.flush()
            return _record(row)

    def update_user(self, user: UserRecord, body: dict[str, Any]) -> None:
        """Store profile fields; change the password when ``password`` is given."""
        if not body:
            raise InputError("Nothing to update")
        new_password = body.get("password")
        profile = {
            k: v
            for k, v in body.items()
            if k not in {"password", "current_password", "username"}
            and isinstance(v, str | int | float | bool)
        }
        refused = [f"{key}: {problem}" for (key,), problem in document_problems(profile)]
        if refused:  # what a profile may hold is the rule of domain.text
            raise InputError("; ".join(refused))
        with self.core.db.transaction() as session:
            row = session.get(UserRow, user.id)
            if row is None:
                raise Unauthorized(EXPIRED_MESSAGE)
            if new_password is not None:
                if row.provider != LOCAL:
                    raise InputError("Password is managed by Keycloak")
                check_credentials(row.username, new_password, self.settings.min_password_length)
                current = body.get("current_password")
                matches = (
                    isinstance(current, str) and verify_password(row.password_hash, current)[0]
                )
                if not matches:
                    raise Forbidden("Current password is incorrect")
                row.password_hash = hash_password(new_password)
            if profile:
                row.profile = {**row.profile, **profile}

    # -- logins --------------------------------------------------------------------------

    def _issue(
        self, session: Session, login: LoginRow, now: datetime, refresh: bool, keycloak: bool
    ) -> IssuedLogin:
        minutes = (
            self.settings.keycloak_access_minutes if keycloak else self.settings.access_minutes
        )
        access_expires = min(now + timedelta(minutes=minutes), login.expires_at)
        access, _ = tokens.issue(self.keys, login.user_id, login.id, "access", now, access_expires)
        if not refresh:
            return IssuedLogin(access, access_expires)
        refresh_expires = min(
            now + timedelta(minutes=self.settings.refresh_minutes), login.expires_at
        )
        token, claims = tokens.issue(
            self.keys, login.user_id, login.id, "refresh", now, refresh_expires
        )
        login.previous_refresh_jti = login.refresh_jti
        login.refresh_jti = claims.jti
        login.rotated_at = now
        session.flush()
        return IssuedLogin(access, access_expires, token, refresh_expires)

    def _new_login(self, session: Session, user_id: int, now: datetime) -> LoginRow:
        login = LoginRow(
            id=uuid.uuid4().hex,
            user_id=user_id,
            created_at=now,
            expires_at=now + timedelta(days=self.settings.login_max_days),
        )
        session.add(login)
        session.flush()
        return login

    def login(self, username: Any, password: Any, address: str) -> IssuedLogin:
        check_credentials(username, password)
        assert isinstance(username, str) and isinstance(password, str)
        throttle = f"{username}\x00{address}"
        self._attempts.check(throttle)
        with self.core.db.transaction() as session:
            row = _find_user(session, LOCAL, username)
            matches, rehash = verify_password(row.password_hash if row else None, password)
            if row is None or not matches:
                self._attempts.failed(throttle)
                raise Unauthorized(INVALID_LOGIN)
            if rehash:
                row.password_hash = hash_password(password)
            self._attempts.clear(throttle)
            now = utcnow()
            return self._issue(session, self._new_login(session, row.id, now), now, True, False)

    def keycloak_login(self, user: UserRecord) -> IssuedLogin:
        with self.core.db.transaction() as session:
            now = utcnow()
            login = self._new_login(session, user.id, now)
            return self._issue(session, login, now, refresh=False, keycloak=True)

    def refresh(self, refresh_token: str) -> IssuedLogin:
        claims = tokens.read(self.keys, refresh_token, "refresh")
        with self.core.db.transaction() as session:
            login = session.get(LoginRow, claims.login_id, with_for_update=True)
            now = utcnow()
            if login is None or login.revoked_at is not None or login.expires_at <= now:
                raise Unauthorized(EXPIRED_MESSAGE)
            if hmac.compare_digest(claims.jti, login.refresh_jti or ""):
                return self._issue(session, login, now, refresh=True, keycloak=False)
            grace = timedelta(seconds=self.settings.refresh_grace_seconds)
            replaced = hmac.compare_digest(claims.jti, login.previous_refresh_jti or "")
            if replaced and login.rotated_at is not None and now - login.rotated_at <= grace:
                # Tabs sharing the cookie refresh together: hand them the current pair
                # (freshly signed, the login's rotation state unchanged).
                return self._reissue_current(login, now)
            login.revoked_at = now  # a replaced token used again: treat the login as stolen
        raise Unauthorized(EXPIRED_MESSAGE)

    def _reissue_current(self, login: LoginRow, now: datetime) -> IssuedLogin:
        access_expires = min(
            now + timedelta(minutes=self.settings.access_minutes), login.expires_at
        )
        access, _ = tokens.issue(self.keys, login.user_id, login.id, "access", now, access_expires)
        refresh_expires = min(
            now + timedelta(minutes=self.settings.refresh_minutes), login.expires_at
        )
        refresh = self.keys.encode(
            {
                "sub": str(login.user_id),
                "sid": login.id,
                "typ": "refresh",
                "iat": int(now.timestamp()),
                "exp": int(refresh_expires.timestamp()),
                "jti": login.refresh_jti,
            }
        )
        return IssuedLogin(access, access_expires, refresh, refresh_expires)

    def user_of(self, access_token: str) -> UserRecord:
        """The user an access token belongs to, while its login stands."""
        return self.user_of_login(tokens.read(self.keys, access_token, "access"))

    def user_of_login(self, claims: tokens.TokenClaims) -> UserRecord:
        """The user of a verified access token's claims, while its login stands: one read,
        made on every request of a logged-in user."""
        with self.core.db.transaction(write=False) as session:
            return self.user_of_login_in(session, claims)

    def user_of_login_in(self, session: Session, claims: tokens.TokenClaims) -> UserRecord:
        """As ``user_of_login``, read in the caller's transaction: a status poll reads the
        login and the job together."""
        row = (
            session.connection()
            .execute(_LOGIN_USER, {"login": claims.login_id, "user": claims.user_id})
            .first()
        )
        if row is None:
            raise Unauthorized(EXPIRED_MESSAGE)
        return UserRecord(
            row.id,
            row.username,
            row.provider,
            row.cluster_access,
            dict(row.profile),
            row.created_at,
        )

    def logout(self, *presented: str | None) -> None:
        """Revoke the login of any token presented, even an expired one."""
        login_ids: set[str] = set()
        for token in presented:
            if token:
                login_id = tokens.login_id_of(self.keys, token)
                if login_id is not None:
                    login_ids.add(login_id)
        if not login_ids:
            return
        with self.core.db.transaction() as session:
            for login_id in login_ids:
                login = session.get(LoginRow, login_id)
                if login is not None and login.revoked_at is None:
                    login.revoked_at = utcnow()


def _find_user(session: Session, provider: str, username: str) -> UserRow | None:
    return session.scalar(
        select(UserRow).where(UserRow.provider == provider, UserRow.username == username)
    )
