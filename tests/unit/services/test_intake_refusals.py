"""What intake refuses for every face alike, on SQLite and PostgreSQL: text no database may
hold, more primaries than the service runs, and more tasks than primaries. A refusal names
its place in the request and leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cyclotron.errors import InputError
from cyclotron.services.core import Core
from cyclotron.services.intake import pipeline
from cyclotron.services.intake.request import EditorInput, FilesInput, IntakeRequest
from cyclotron.settings import DEFAULT_MAX_PRIMARIES
from cyclotron.storage.tables import JobRow

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "yaptide"
SCRIPT = FilesInput({"run.sh": b"echo hi\n"})


def stored_jobs(core: Core) -> int:
    with core.db.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(JobRow)) or 0)


def ex1() -> dict[str, Any]:
    path = FIXTURES / "ex1.json"
    if not path.is_file():
        pytest.skip(f"{path} is not among the fixtures")
    project: dict[str, Any] = json.loads(path.read_text())["input"]["inputJson"]
    return project


def refused(core: Core, **fields: Any) -> InputError:
    request = IntakeRequest(**{"owner_id": 7, "service": "example", "input": SCRIPT, **fields})
    with pytest.raises(InputError) as refusal:
        pipeline.submit(core, request)
    assert stored_jobs(core) == 0
    assert list(core.files.staging_dir.iterdir()) == []
    return refusal.value


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a\x00b", "must not contain control characters (NUL at position 1)"),
        ("two\nlines", "must not contain control characters (U+000A at position 3)"),
        ("a\ud800", "must be valid Unicode text, not a lone surrogate (U+D800)"),
    ],
    ids=["nul", "line-break", "surrogate"],
)
def test_a_name_no_database_may_hold_is_refused_at_its_field(
    core: Core, name: str, problem: str
) -> None:
    error = refused(core, name=name)
    assert [(p.location, p.message) for p in error.problems] == [(("name",), problem)]


def test_an_editor_projects_strings_are_checked_where_they_are(core: Core) -> None:
    project = ex1()
    project["figureManager"]["figures"][1]["name"] = "Vacuum\x00"
    project["project"]["description"] = "two\nlines\tand a tab"  # multi-line text is fine
    error = refused(core, service="builtin", input=EditorInput(project))
    where = ("input", "project", "figureManager", "figures", 1, "name")
    assert [p.location for p in error.problems] == [where]


def test_validation_lists_the_text_problem_too(core: Core) -> None:
    request = IntakeRequest(owner_id=7, service="example", input=SCRIPT, name="x\x1b[0m")
    checked = pipeline.check(core, request)
    assert [str(p) for p in checked.problems] == [
        "name: must not contain control characters (U+001B at position 1)"
    ]


def test_primaries_above_the_services_limit_are_refused_naming_where_they_are_given(
    core: Core,
) -> None:
    over = DEFAULT_MAX_PRIMARIES + 1
    error = refused(core, service="builtin", input=EditorInput(ex1(), primaries=over))
    assert [(p.location, p.message) for p in error.problems] == [
        (
            ("input", "primaries"),
            f"must be at most {DEFAULT_MAX_PRIMARIES} primaries for 'builtin', not {over}",
        )
    ]
    project = ex1()
    project["beam"]["numberOfParticles"] = 10**15
    error = refused(core, service="builtin", input=EditorInput(project))
    assert error.problems[0].location == ("input", "project", "beam", "numberOfParticles")


@pytest.mark.parametrize(
    "core_overrides", [{"services": {"small": {"plugin": "builtin", "max_primaries": 5000}}}]
)
def test_a_service_with_a_lower_max_primaries_refuses_above_it(core: Core) -> None:
    error = refused(core, service="small", input=EditorInput(ex1()))  # ex1 states 10,000
    assert error.problems[0].message == "must be at most 5000 primaries for 'small', not 10000"
    accepted = pipeline.submit(
        core, IntakeRequest(owner_id=7, service="small", input=EditorInput(ex1(), 5000))
    )
    assert accepted.job.attrs["primaries"] == 5000


@pytest.mark.parametrize("fit_ntasks", [False, True], ids=["native", "yaptide"])
def test_ntasks_above_the_primaries_runs_one_primary_per_task_on_every_face(
    core: Core, fit_ntasks: bool
) -> None:
    """One rule (docs/submissions.md, yaptide.md §3.9): ntasks > P becomes P, and says so."""
    request = IntakeRequest(
        owner_id=7,
        service="builtin",
        input=EditorInput(ex1(), 10),
        ntasks=50,
        fit_ntasks=fit_ntasks,
    )
    checked = pipeline.check(core, request)
    assert checked.problems == [] and checked.estimates["ntasks"] == 10
    assert checked.warnings == [
        "ntasks: 50 is more than the 10 primaries: 10 tasks run, one primary each"
    ]
    job = pipeline.submit(core, request).job
    assert job.ntasks == 10 and [t.requested_primaries for t in job.tasks] == [1] * 10


def test_seeds_given_for_more_tasks_than_primaries_are_refused(core: Core) -> None:
    error = refused(
        core, service="builtin", input=EditorInput(ex1(), 3), ntasks=4, seeds=(5, 6, 7, 8)
    )
    assert [(p.location, p.message) for p in error.problems] == [
        (("ntasks",), "must be at most the number of primaries (3), not 4")
    ]


def test_yaptides_ntasks_below_one_is_still_one_task(core: Core) -> None:
    request = IntakeRequest(
        owner_id=7, service="builtin", input=EditorInput(ex1(), 10), ntasks=0, fit_ntasks=True
    )
    job = pipeline.submit(core, request).job
    assert job.ntasks == 1 and [t.requested_primaries for t in job.tasks] == [10]
