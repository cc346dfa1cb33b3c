"""API-key users and YAPTIDE accounts are different owners, whatever their numbers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cyclotron.domain.records import ACCOUNT_OWNERS
from cyclotron.errors import InputError, NotFound
from cyclotron.services.access.accounts import Accounts
from cyclotron.services.access.apikeys import authenticate, create_account_key, create_key
from cyclotron.services.core import Core, build_core
from cyclotron.settings import load_settings


@pytest.fixture
def secured(db_url: str, tmp_path: Path) -> Iterator[Core]:
    """A core with authentication on (an admin key configured)."""
    config = tmp_path / "cyclotron.toml"
    config.write_text("")
    settings = load_settings(
        config,
        environ={},
        overrides={
            "server": {"database_url": db_url, "data_dir": str(tmp_path / "data")},
            "api_key": "an-admin-key-for-this-test-only",
        },
    )
    core = build_core(settings)
    yield core
    core.close()


def test_a_key_user_and_the_account_with_the_same_number_are_different_owners(
    secured: Core,
) -> None:
    account = Accounts(secured).add_user("alice", "a-long-password")
    key, _ = create_key(secured, account.id)
    caller = authenticate(secured, key)
    assert caller.user_id == account.id
    assert not caller.may_see(account.owner_id)
    assert account.owner_id == ACCOUNT_OWNERS + account.id


def test_an_account_key_acts_as_the_account(secured: Core) -> None:
    account = Accounts(secured).add_user("bob", "a-long-password")
    key, info = create_account_key(secured, "bob", label="bob's scripts")
    caller = authenticate(secured, key)
    assert caller.user_id == info.user_id == account.owner_id
    assert caller.may_see(account.owner_id) and not caller.admin


def test_keys_cannot_take_an_account_owner_or_an_unknown_account(secured: Core) -> None:
    with pytest.raises(InputError, match="--account"):
        create_key(secured, ACCOUNT_OWNERS + 1)
    with pytest.raises(NotFound, match="carol"):
        create_account_key(secured, "carol")
