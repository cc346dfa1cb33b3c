"""Signing keys outlive a restart; tokens are checked for signature, type and expiry."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cyclotron.errors import Unauthorized
from cyclotron.services.access import tokens
from cyclotron.signing import KEYS_FILE, SigningKeys


def test_keys_are_created_once_private_and_read_back(tmp_path: Path) -> None:
    first = SigningKeys.in_directory(tmp_path)
    path = tmp_path / KEYS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = SigningKeys.in_directory(tmp_path)  # the next start
    now = datetime.now(UTC)
    token, _ = tokens.issue(first, 7, "login-1", "access", now, now + timedelta(minutes=5))
    assert tokens.read(second, token, "access").user_id == 7


def test_a_rotated_key_still_verifies_while_listed(tmp_path: Path) -> None:
    old = SigningKeys.in_directory(tmp_path)
    now = datetime.now(UTC)
    token, _ = tokens.issue(old, 1, "s", "access", now, now + timedelta(minutes=5))
    path = tmp_path / KEYS_FILE
    document = json.loads(path.read_text())
    document["keys"]["next"] = "ab" * 32
    document["current"] = "next"
    path.write_text(json.dumps(document))
    rotated = SigningKeys.in_directory(tmp_path)
    assert tokens.read(rotated, token, "access").login_id == "s"
    fresh, _ = tokens.issue(rotated, 1, "s", "access", now, now + timedelta(minutes=5))
    del document["keys"][old.current]
    path.write_text(json.dumps(document))
    only_new = SigningKeys.in_directory(tmp_path)
    assert tokens.read(only_new, fresh, "access").user_id == 1
    with pytest.raises(Unauthorized):
        tokens.read(only_new, token, "access")


def test_wrong_type_expired_and_forged_tokens_are_refused(tmp_path: Path) -> None:
    keys = SigningKeys.in_directory(tmp_path)
    now = datetime.now(UTC)
    refresh, _ = tokens.issue(keys, 1, "s", "refresh", now, now + timedelta(minutes=5))
    with pytest.raises(Unauthorized):
        tokens.read(keys, refresh, "access")
    expired, _ = tokens.issue(keys, 1, "s", "access", now, now - timedelta(seconds=1))
    with pytest.raises(Unauthorized):
        tokens.read(keys, expired, "access")
    assert tokens.login_id_of(keys, expired) == "s"  # logout still finds its login
    other = SigningKeys.from_secret("not the secret of this server, 32 bytes or more")
    forged, _ = tokens.issue(other, 1, "s", "access", now, now + timedelta(minutes=5))
    with pytest.raises(Unauthorized):
        tokens.read(keys, forged, "access")
    assert tokens.login_id_of(keys, forged) is None
    with pytest.raises(Unauthorized):
        tokens.read(keys, "garbage", "access")
