"""What the native face refuses before anything is stored, on SQLite and PostgreSQL
(docs/submissions.md): text no database may hold in a body or a search, numbers that are not
integers, physically meaningless editor projects named by their item, more primaries than the
service runs and more tasks than primaries. Every refusal is this face's 422 list."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest
from native_support import example_project

CONFIG = {
    "services": {
        "example": {"plugin": "script"},
        "builtin": {"plugin": "builtin", "max_primaries": 1_000_000},
    },
}
NUL = "must not contain control characters (NUL at position 1)"


def script(**overrides: Any) -> dict[str, Any]:
    base = {"name": "s", "service": "example", "input": {"kind": "files", "files": {"run.sh": ""}}}
    return {**base, **overrides}


def editor(project: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    given = {"kind": "editor", "project": project or example_project()}
    return {"name": "e", "service": "builtin", "input": given, **overrides}


def problems(response: httpx.Response) -> list[tuple[list[Any], str]]:
    assert response.status_code == 422, response.text
    return [(p["loc"], p["msg"]) for p in response.json()["detail"]]


def total(client: httpx.Client) -> int:
    count: int = client.get("/api/jobs").json()["total"]
    return count


def test_a_name_with_nul_or_control_characters_is_refused_at_its_field(
    client: httpx.Client,
) -> None:
    before = total(client)
    assert problems(client.post("/api/jobs", json=script(name="a\x00b"))) == [
        (["body", "name"], NUL)
    ]
    titled = {**script(title="a\x1bb"), "name": None}
    assert problems(client.post("/api/jobs", json=titled)) == [
        (["body", "name"], "must not contain control characters (U+001B at position 1)")
    ]
    assert total(client) == before
    checked = client.post("/api/validate", json=script(name="a\x00b")).json()
    assert checked == {"valid": False, "errors": [f"name: {NUL}"], "warnings": [], "estimates": {}}


@pytest.mark.parametrize("field", ["name", "service"])
def test_a_lone_surrogate_in_the_body_is_refused_at_its_field(
    client: httpx.Client, field: str
) -> None:
    raw = json.dumps(script(**{field: "a\ud800"})).encode()  # sent escaped, as JSON allows
    response = client.post("/api/jobs", content=raw, headers={"Content-Type": "application/json"})
    assert [loc for loc, _ in problems(response)] == [["body", field]]


@pytest.mark.parametrize("parameter", ["search", "service", "status"])
def test_list_filters_with_nul_are_refused_at_their_parameter(
    client: httpx.Client, parameter: str
) -> None:
    assert problems(client.get("/api/jobs", params={parameter: "a\x00b"})) == [
        (["query", parameter], NUL)
    ]


def test_a_project_string_with_nul_is_refused_where_it_is(client: httpx.Client) -> None:
    project = example_project()
    project["scoringManager"]["outputs"][0]["name"] = "z\x00"
    where = ["body", "input", "project", "scoringManager", "outputs", 0, "name"]
    assert problems(client.post("/api/jobs", json=editor(project))) == [(where, NUL)]


@pytest.mark.parametrize("value", [True, "5", 5.0], ids=["bool", "digits", "float"])
def test_ntasks_must_be_a_json_integer(client: httpx.Client, value: Any) -> None:
    found = problems(client.post("/api/jobs", json=script(ntasks=value)))
    assert found == [(["body", "ntasks"], "Input should be a valid integer")]


@pytest.mark.parametrize(
    ("field", "value"),
    [("priority", True), ("seeds", ["1"]), ("reuse", "yes")],
    ids=["priority-bool", "seed-text", "reuse-text"],
)
def test_other_numbers_and_flags_are_strict_too(
    client: httpx.Client, field: str, value: Any
) -> None:
    response = client.post("/api/jobs", json=script(**{field: value}))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", field]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p["beam"].update(energy=-100),
            "The builtin engine cannot run this project: beam: energy must be positive, not -100",
        ),
        (
            lambda p: p["beam"].update(energy=700),
            "the beam energy 700 MeV (its tables cover 0.05 to 600 MeV)",
        ),
        (
            lambda p: p["beam"]["particle"].update(id=24, name="Alpha", a=4, z=2),
            "the beam particle Alpha: not supported by the builtin engine",
        ),
        (
            lambda p: p["figureManager"]["figures"][0]["geometryData"].pop("geometryType"),
            "figure 1 ('Water_phantom_cylinder'): missing geometryType",
        ),
        (
            lambda p: p["figureManager"]["figures"][0]["geometryData"].update(geometryType=None),
            "figure 1 ('Water_phantom_cylinder'): missing geometryType",
        ),
        (
            lambda p: p["figureManager"].update(figures="abc"),
            "figureManager: figures must be a list, not 'abc'",
        ),
        (
            lambda p: p["figureManager"]["figures"][0]["geometryData"]["parameters"].update(
                radius=0
            ),
            "figure 1 ('Water_phantom_cylinder'): radius must be positive, not 0",
        ),
    ],
    ids=[
        "energy-negative",
        "energy-above-tables",
        "particle",
        "no-geometryType",
        "null-geometryType",
        "figures-text",
        "radius-zero",
    ],
)
def test_editor_projects_are_refused_naming_the_item(
    client: httpx.Client, change: Any, message: str
) -> None:
    project = copy.deepcopy(example_project())
    change(project)
    before = total(client)
    [(where, text)] = problems(client.post("/api/jobs", json=editor(project)))
    assert where == ["body", "input", "project"]
    assert message in text
    assert "Error" not in text and "indices" not in text
    assert total(client) == before


def test_primaries_above_max_primaries_are_refused_at_their_field(client: httpx.Client) -> None:
    body = editor(None)
    body["input"]["primaries"] = 10**15
    assert problems(client.post("/api/jobs", json=body)) == [
        (
            ["body", "input", "primaries"],
            "must be at most 1000000 primaries for 'builtin', not 1000000000000000",
        )
    ]
    project = example_project()
    project["beam"]["numberOfParticles"] = 2_000_000
    assert problems(client.post("/api/jobs", json=editor(project))) == [
        (
            ["body", "input", "project", "beam", "numberOfParticles"],
            "must be at most 1000000 primaries for 'builtin', not 2000000",
        )
    ]
    services = client.get("/api/services").json()["services"]
    limits = {s["name"]: s["limits"]["max_primaries"] for s in services}
    assert limits["builtin"] == 1_000_000


def test_ntasks_above_the_primaries_runs_one_primary_per_task(client: httpx.Client) -> None:
    """As YAPTIDE's §3.9 (docs/submissions.md): the job has P tasks, and validate says why."""
    body = editor(None, ntasks=50)
    body["input"]["primaries"] = 10
    checked = client.post("/api/validate", json=body).json()
    assert checked["valid"] is True and checked["estimates"]["ntasks"] == 10
    assert checked["warnings"] == [
        "ntasks: 50 is more than the 10 primaries: 10 tasks run, one primary each"
    ]
    created = client.post("/api/jobs", json=body)
    assert created.status_code == 201, created.text
    detail = client.get(f"/api/jobs/{created.json()['id']}").json()
    assert detail["ntasks"] == 10 and len(detail["tasks"]) == 10
    client.post(f"/api/jobs/{created.json()['id']}/cancel")
    seeded = editor(None, ntasks=4, seeds=[5, 6, 7, 8])
    seeded["input"]["primaries"] = 3
    assert problems(client.post("/api/jobs", json=seeded)) == [
        (["body", "ntasks"], "must be at most the number of primaries (3), not 4")
    ]
