"""What the YAPTIDE face refuses before anything is stored, on SQLite and PostgreSQL
(docs/submissions.md): text no database may hold, physically meaningless or malformed editor
projects (named by their item, never with a Python exception's text) and more primaries than
the service runs. Every refusal is this face's ``{message, status_code}`` with 400.

The projects go to ``builtin``, whose converter reads any project (the SHIELD-HIT12A double
of the other suites takes the examples only); a refused project never runs."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support.yaptide import PASSWORD, assert_error, fixture_body

CONFIG: dict[str, Any] = {"services": {"builtin": {"plugin": "builtin"}}}
NUL = "must not contain control characters (NUL at position 1)"
FIRST_FIGURE = "figure 1 ('Water_phantom_cylinder')"


def stored(client: httpx.Client) -> int:
    count: int = client.get("/user/simulations").json()["simulations_count"]
    return count


def refused(client: httpx.Client, body: dict[str, Any]) -> str:
    """The message of a 400 to ``POST /jobs/direct`` that stored nothing."""
    before = stored(client)
    message: str = assert_error(client.post("/jobs/direct", json=body), 400)["message"]
    assert stored(client) == before
    return message


def project_body(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    project = copy.deepcopy(fixture_body()["input_json"])
    change(project)
    return fixture_body(sim_type="builtin", ntasks=1, input_json=project)


def test_a_title_with_nul_is_refused_naming_it(alice: httpx.Client) -> None:
    assert refused(alice, fixture_body(title="a\x00b")) == f"title: {NUL}"
    assert refused(alice, fixture_body(title="bell\x07")) == (
        "title: must not contain control characters (U+0007 at position 4)"
    )


@pytest.mark.parametrize("key", ["title", "sim_type"])
def test_a_lone_surrogate_is_refused_not_a_server_error(alice: httpx.Client, key: str) -> None:
    raw = json.dumps(fixture_body(**{key: "a\ud800"})).encode()  # sent escaped, as JSON allows
    before = stored(alice)
    answer = alice.post("/jobs/direct", content=raw, headers={"Content-Type": "application/json"})
    assert_error(answer, 400)
    assert stored(alice) == before


def test_a_project_string_with_nul_is_refused_where_it_is(alice: httpx.Client) -> None:
    body = project_body(lambda p: p["scoringManager"]["outputs"][0].update(name="z\x00"))
    assert refused(alice, body) == f"input.project.scoringManager.outputs.0.name: {NUL}"


def test_search_parameters_with_nul_are_refused_naming_them(alice: httpx.Client) -> None:
    error = assert_error(alice.get("/user/simulations", params={"job_state": "\x00"}), 400)
    assert error["message"] == (
        "query parameter 'job_state' must not contain control characters (NUL at position 0)"
    )


def test_profile_fields_with_nul_are_refused(alice: httpx.Client) -> None:
    error = assert_error(alice.post("/user/update", json={"nickname": "a\x00b"}), 400)
    assert error["message"] == f"nickname: {NUL}"
    assert alice.post("/user/update", json={"bio": "two\nlines"}).status_code == 200


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({"username": "a\ud800"}, "username must be 1 to 255 printable characters"),
        ({"username": "a\x7f"}, "username must be 1 to 255 printable characters"),
        ({"password": "pass\ud800word"}, "password must be valid Unicode text"),
    ],
    ids=["username-surrogate", "username-del", "password-surrogate"],
)
def test_credentials_no_database_may_hold_are_refused(
    anonymous: httpx.Client, credentials: dict[str, str], message: str
) -> None:
    body = json.dumps({"username": "carol", "password": PASSWORD, **credentials}).encode()
    headers = {"Content-Type": "application/json"}
    error = assert_error(anonymous.put("/auth/register", content=body, headers=headers), 400)
    assert error["message"] == message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["beam"].update(energy=-100), "beam: energy must be positive, not -100"),
        (
            lambda p: p["beam"].update(energy=1000),
            "the beam energy 1000 MeV (its tables cover 0.05 to 600 MeV)",
        ),
        (
            lambda p: p["figureManager"]["figures"][0]["geometryData"].pop("geometryType"),
            f"{FIRST_FIGURE}: missing geometryType",
        ),
        (
            lambda p: p["figureManager"].update(figures="abc"),
            "figureManager: figures must be a list, not 'abc'",
        ),
        (
            lambda p: p["figureManager"]["figures"][0]["geometryData"]["parameters"].update(
                depth=0
            ),
            f"{FIRST_FIGURE}: depth must be positive, not 0",
        ),
        (
            lambda p: p["figureManager"]["figures"][0]["geometryData"].update(position=[0, 0]),
            f"{FIRST_FIGURE}: position must be three numbers, not [0, 0]",
        ),
    ],
    ids=[
        "energy-negative",
        "energy-above-tables",
        "no-geometryType",
        "figures-text",
        "depth-zero",
        "position-short",
    ],
)
def test_editor_projects_are_refused_naming_the_item(
    alice: httpx.Client, change: Callable[[dict[str, Any]], Any], message: str
) -> None:
    found = refused(alice, project_body(change))
    assert found.startswith("input.project: The builtin engine cannot run this project: ")
    assert message in found
    assert "Error" not in found and "indices" not in found


def test_primaries_above_max_primaries_are_refused_naming_the_field(alice: httpx.Client) -> None:
    body = project_body(lambda p: p["beam"].update(numberOfParticles=10**15))
    assert refused(alice, body) == (
        "input.project.beam.numberOfParticles: must be at most 100000000 primaries for "
        "'builtin', not 1000000000000000"
    )
