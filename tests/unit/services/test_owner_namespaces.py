"""API-key users and YAPTIDE accounts are different owners, whatever their numbers."""

from __future__ import annotations

from typing import Any

import pytest

from cyclotron.domain.records import ACCOUNT_OWNERS
from cyclotron.errors import InputError, NotFound
from cyclotron.services.access.accounts import Accounts
from cyclotron.services.access.apikeys import authenticate, create_account_key, create_key
from cyclotron.services.core import Core


@pytest.fixture
def core_overrides() -> dict[str, Any]:
    """Authentication on: an admin key configured."""
    return {"api_key": "an-admin-key-for-this-test-only"}


def test_a_key_user_and_the_account_with_the_same_number_are_different_owners(
    core: Core,
) -> None:
    account = Accounts(core).add_user("alice", "a-long-password")
    key, _ = create_key(core, account.id)
    caller = authenticate(core, key)
    assert caller.user_id == account.id
    assert not caller.may_see(account.owner_id)
    assert account.owner_id == ACCOUNT_OWNERS + account.id


def test_an_account_key_acts_as_the_account(core: Core) -> None:
    account = Accounts(core).add_user("bob", "a-long-password")
    key, info = create_account_key(core, "bob", label="bob's scripts")
    caller = authenticate(core, key)
    assert caller.user_id == info.user_id == account.owner_id
    assert caller.may_see(account.owner_id) and not caller.admin


def test_keys_cannot_take_an_account_owner_or_an_unknown_account(core: Core) -> None:
    with pytest.raises(InputError, match="--account"):
        create_key(core, ACCOUNT_OWNERS + 1)
    with pytest.raises(NotFound, match="carol"):
        create_account_key(core, "carol")
