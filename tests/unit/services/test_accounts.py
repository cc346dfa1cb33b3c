"""Passwords and the login rate limit of the YAPTIDE accounts (spec/yaptide.md §3.2–§3.3).

New passwords are hashed with argon2id; werkzeug ``scrypt:`` and ``pbkdf2:`` hashes from an
original YAPTIDE database verify and are replaced at the next successful login. The werkzeug
hashes are built here with hashlib exactly as ``werkzeug.security.generate_password_hash``
builds them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from cyclotron.errors import RateLimited, Unauthorized
from cyclotron.services.access import accounts as accounts_module
from cyclotron.services.access.accounts import (
    LOCAL,
    Accounts,
    IssuedLogin,
    hash_password,
    verify_password,
)
from cyclotron.services.core import Core
from cyclotron.storage.tables import UserRow

PASSWORD = "correct horse battery"
WRONG = "correct horse battery!"
SALT = "q8ZtR2mXw4LpN7vC"  # werkzeug's gen_salt(16): 16 letters and digits
ATTEMPTS = 3
WINDOW_SECONDS = 60.0
ADDRESS = "192.0.2.10"


def werkzeug_scrypt(password: str, salt: str = SALT) -> str:
    n, r, p = 32768, 8, 1
    digest = hashlib.scrypt(
        password.encode(), salt=salt.encode(), n=n, r=r, p=p, maxmem=132 * n * r * p
    )
    return f"scrypt:{n}:{r}:{p}${salt}${digest.hex()}"


def werkzeug_pbkdf2(password: str, salt: str = SALT) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 600000)
    return f"pbkdf2:sha256:600000${salt}${digest.hex()}"


WERKZEUG = {"scrypt": werkzeug_scrypt, "pbkdf2": werkzeug_pbkdf2}


@pytest.fixture
def core_overrides() -> dict[str, Any]:
    return {"yaptide": {"login_attempts": ATTEMPTS, "login_window_seconds": WINDOW_SECONDS}}


@pytest.fixture
def accounts(core: Core) -> Accounts:
    """Accounts over a fresh database (SQLite and PostgreSQL), with a small login limit."""
    return Accounts(core)


def stored_hash(accounts: Accounts, username: str) -> str:
    with accounts.core.db.transaction(write=False) as session:
        row = session.scalar(
            select(UserRow).where(UserRow.provider == LOCAL, UserRow.username == username)
        )
        assert row is not None and row.password_hash is not None
        return row.password_hash


def store_hash(accounts: Accounts, username: str, password_hash: str) -> None:
    with accounts.core.db.transaction() as session:
        row = session.scalar(
            select(UserRow).where(UserRow.provider == LOCAL, UserRow.username == username)
        )
        assert row is not None
        row.password_hash = password_hash


# -- password hashes ----------------------------------------------------------------------


def test_new_hashes_are_salted_argon2id() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("$argon2id$")
    assert first != second
    assert verify_password(first, PASSWORD) == (True, False)
    assert verify_password(first, WRONG) == (False, False)


def test_weaker_argon2_hash_verifies_and_is_flagged_for_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    assert verify_password(weak, PASSWORD) == (True, True)
    assert verify_password(weak, WRONG)[0] is False


@pytest.mark.parametrize("kind", list(WERKZEUG))
def test_werkzeug_hash_verifies_and_is_flagged_for_rehash(kind: str) -> None:
    stored = WERKZEUG[kind](PASSWORD)
    assert verify_password(stored, PASSWORD) == (True, True)
    assert verify_password(stored, WRONG)[0] is False
    assert verify_password(stored, "")[0] is False
    assert verify_password(WERKZEUG[kind](PASSWORD, salt="another-salt0000"), PASSWORD)[0]


@pytest.mark.parametrize(
    "stored",
    [
        None,
        "",
        "garbage",
        f"md5${SALT}${hashlib.md5(PASSWORD.encode()).hexdigest()}",
        f"pbkdf2:sha256:notanumber${SALT}$00",
        f"scrypt:32768:8${SALT}$00",
        "$argon2id$v=19$m=65536,t=3,p=4$broken",
    ],
    ids=repr,
)
def test_unusable_hashes_never_match(stored: str | None) -> None:
    assert verify_password(stored, PASSWORD)[0] is False


@pytest.mark.parametrize("kind", list(WERKZEUG))
def test_login_replaces_a_werkzeug_hash_with_argon2id(accounts: Accounts, kind: str) -> None:
    accounts.add_user("olduser", "placeholder-password")
    store_hash(accounts, "olduser", WERKZEUG[kind](PASSWORD))

    with pytest.raises(Unauthorized):
        accounts.login("olduser", WRONG, ADDRESS)
    assert stored_hash(accounts, "olduser").startswith(f"{kind}:")  # a failure changes nothing

    issued = accounts.login("olduser", PASSWORD, ADDRESS)
    assert isinstance(issued, IssuedLogin) and issued.refresh_token is not None
    assert accounts.user_of(issued.access_token).username == "olduser"
    rehashed = stored_hash(accounts, "olduser")
    assert rehashed.startswith("$argon2id$")
    assert verify_password(rehashed, PASSWORD) == (True, False)

    accounts.login("olduser", PASSWORD, ADDRESS)  # the new hash logs in again
    with pytest.raises(Unauthorized):
        accounts.login("olduser", WRONG, ADDRESS)


def test_registration_stores_argon2id(accounts: Accounts) -> None:
    accounts.add_user("newuser", PASSWORD)
    assert stored_hash(accounts, "newuser").startswith("$argon2id$")
    accounts.login("newuser", PASSWORD, ADDRESS)


# -- login rate limit ---------------------------------------------------------------------


@dataclass
class FakeClock:
    """Stands in for the ``time`` module of the accounts service: the window's clock."""

    now: float = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(accounts_module, "time", fake)
    return fake


def test_failed_logins_are_limited_per_user_and_address(
    accounts: Accounts, clock: FakeClock
) -> None:
    accounts.add_user("alice", PASSWORD)
    accounts.add_user("bob", PASSWORD)
    for _ in range(ATTEMPTS):
        with pytest.raises(Unauthorized):
            accounts.login("alice", WRONG, ADDRESS)

    # Refused before the password is even looked at: the right one is refused too.
    with pytest.raises(RateLimited) as refused:
        accounts.login("alice", PASSWORD, ADDRESS)
    assert refused.value.retry_after == WINDOW_SECONDS + 1
    clock.now += WINDOW_SECONDS / 2
    with pytest.raises(RateLimited) as refused:
        accounts.login("alice", WRONG, ADDRESS)
    assert refused.value.retry_after == WINDOW_SECONDS / 2 + 1

    # Another address, or another user from the same address, is not limited.
    accounts.login("alice", PASSWORD, "198.51.100.7")
    accounts.login("bob", PASSWORD, ADDRESS)

    # The window slides past: alice logs in again from the first address.
    clock.now += WINDOW_SECONDS / 2
    accounts.login("alice", PASSWORD, ADDRESS)


def test_unknown_users_count_as_failures(accounts: Accounts, clock: FakeClock) -> None:
    for _ in range(ATTEMPTS):
        with pytest.raises(Unauthorized):
            accounts.login("nobody", PASSWORD, ADDRESS)
    with pytest.raises(RateLimited):
        accounts.login("nobody", PASSWORD, ADDRESS)


def test_a_successful_login_clears_the_failures(accounts: Accounts, clock: FakeClock) -> None:
    accounts.add_user("alice", PASSWORD)
    for _ in range(ATTEMPTS - 1):
        with pytest.raises(Unauthorized):
            accounts.login("alice", WRONG, ADDRESS)
    accounts.login("alice", PASSWORD, ADDRESS)
    for _ in range(ATTEMPTS):
        with pytest.raises(Unauthorized):
            accounts.login("alice", WRONG, ADDRESS)
    with pytest.raises(RateLimited):
        accounts.login("alice", PASSWORD, ADDRESS)
