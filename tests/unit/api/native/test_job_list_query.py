"""The job list reads its query itself (no FastAPI parameters): every value out of range is a
422 in FastAPI's list form, naming the value; none reaches the database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.inprocess import AppClient, app_client

from cyclotron.services.core import Core


@pytest.fixture
def client(core: Core) -> Iterator[AppClient]:
    with app_client(core) as client:
        yield client


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("page", "0", "greater than or equal to 1"),
        ("page", "x", "valid integer"),
        ("page", str(10**30), "less than or equal to 1000000000"),
        ("page_size", "0", "greater than or equal to 1"),
        ("page_size", "101", "less than or equal to 100"),
        ("user_id", "-1", "greater than or equal to 0"),
        ("user_id", str(2**63), "less than or equal to 9223372036854775807"),
        ("status", "asleep", "status must be among"),
        ("search", "x" * 201, "at most 200 characters"),
    ],
)
def test_values_out_of_range_are_422(
    client: AppClient, name: str, value: str, message: str
) -> None:
    answer = client.get("/api/jobs", params={name: value})
    assert answer.status_code == 422
    (problem,) = answer.json()["detail"]
    assert problem["loc"] == ["query", name]
    assert message in problem["msg"]


def test_the_largest_values_are_answered(client: AppClient) -> None:
    answer = client.get(
        "/api/jobs", params={"page": "1000000000", "page_size": "100", "user_id": str(2**63 - 1)}
    )
    assert answer.status_code == 200
    assert answer.json() == {"jobs": [], "total": 0, "page": 1_000_000_000, "page_size": 100}
