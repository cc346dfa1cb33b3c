"""The intake pipeline: what a request becomes, and that a refusal leaves nothing behind."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from cyclotron.errors import Forbidden, InputError
from cyclotron.services.core import Core
from cyclotron.services.intake import pipeline
from cyclotron.services.intake.request import FilesInput, IntakeRequest, StagedInput
from cyclotron.storage.tables import JobRow


def stored_jobs(core: Core) -> int:
    with core.db.transaction(write=False) as session:
        return int(session.scalar(select(func.count()).select_from(JobRow)) or 0)


def leftovers(core: Core) -> list[Path]:
    """Staging areas still on disk (every submission, stored or refused, removes its own)."""
    return list(core.files.staging_dir.iterdir())


def request(**changes: object) -> IntakeRequest:
    fields: dict[str, object] = {
        "owner_id": 7,
        "service": "example",
        "input": FilesInput({"run.sh": b"echo hi > out.txt\n", "data.txt": b"1 2 3\n"}),
    }
    fields.update(changes)
    return IntakeRequest(**fields)  # type: ignore[arg-type]


def test_a_files_request_becomes_a_job_with_its_tasks_and_input(core: Core) -> None:
    submitted = pipeline.submit(core, request(ntasks=2, seeds=[5, 6], name="two"))
    job = submitted.job
    assert (job.name, job.ntasks, job.owner_id) == ("two", 2, 7)
    assert [t.seed for t in job.tasks] == [5, 6]
    assert not submitted.reused
    input_dir = core.files.input_dir(job.id)
    assert sorted(p.name for p in input_dir.iterdir()) == ["data.txt", "run.sh"]
    assert (input_dir / "run.sh").read_bytes() == b"echo hi > out.txt\n"
    assert job.attrs["input_kind"] == "files"
    assert leftovers(core) == []


def test_every_problem_is_located_and_nothing_is_stored(core: Core) -> None:
    bad = request(
        input=FilesInput({"run.sh": b"true\n", "../x": b"y", "a\x01b": b"z"}),
        options={"gpu": True},
        seeds=[-1],
        ntasks=1,
    )
    with pytest.raises(InputError) as refused:
        pipeline.submit(core, bad)
    locations = [p.location for p in refused.value.problems]
    assert locations == [
        ("options",),
        ("seeds", 0),
        ("input", "files", "../x"),
        ("input", "files", "a\x01b"),
    ]
    assert stored_jobs(core) == 0 and leftovers(core) == []


def test_unknown_service_is_refused_at_its_field(core: Core) -> None:
    with pytest.raises(InputError) as refused:
        pipeline.submit(core, request(service="nope"))
    assert refused.value.problems[0].location == ("service",)
    assert "unknown service 'nope'" in refused.value.message


def test_a_plugin_refusal_removes_the_staged_input(core: Core) -> None:
    empty = request(input=FilesInput({"run.sh": b""}))
    with pytest.raises(InputError) as refused:
        pipeline.submit(core, empty)
    assert refused.value.problems[0].location == ("input",)
    assert "run.sh is empty" in refused.value.message
    assert stored_jobs(core) == 0 and leftovers(core) == []


def test_input_checked_later_is_accepted_now_and_the_staging_area_is_taken(
    core: Core,
) -> None:
    staging = core.files.new_staging_area()
    (staging / "input").mkdir()
    (staging / "input" / "run.sh").write_bytes(b"")
    request_later = request(input=StagedInput(staging), check_now=False, name_prefix="upload")
    job = pipeline.submit(core, request_later).job
    assert job.name == f"upload-{job.number}"
    assert (core.files.input_dir(job.id) / "run.sh").read_bytes() == b""
    assert leftovers(core) == []


def test_priority_needs_an_admin_and_check_lists_it(core: Core) -> None:
    raised = request(priority=3, admin=False)
    with pytest.raises(Forbidden):
        pipeline.submit(core, raised)
    assert stored_jobs(core) == 0 and leftovers(core) == []
    checked = pipeline.check(core, raised)
    assert [str(p) for p in checked.problems] == [
        "priority: a positive priority needs an admin key"
    ]
    assert leftovers(core) == []


def test_the_input_key_ignores_file_order_and_seeds(core: Core) -> None:
    one = pipeline.cache_status(core, request())
    files = {"data.txt": b"1 2 3\n", "run.sh": b"echo hi > out.txt\n"}
    other = pipeline.cache_status(core, request(input=FilesInput(files), seeds=[9]))
    changed = pipeline.cache_status(core, request(input=FilesInput({"run.sh": b"echo\n"})))
    assert one.key == other.key != changed.key
    assert not one.cached  # example is a script service: its results are never reused
    assert leftovers(core) == []


@pytest.fixture
def unconfined(core: Core) -> Core:
    """The core of a server with authentication on whose sandbox could not start."""
    core.settings = core.settings.model_copy(update={"api_key": SecretStr("an-admin-key")})
    core.sandbox = replace(core.sandbox, bwrap=None, reason="bubblewrap is not installed")
    return core


def test_without_a_sandbox_only_admins_run_scripts(unconfined: Core) -> None:
    with pytest.raises(Forbidden, match="only admins may run scripts: bubblewrap"):
        pipeline.submit(unconfined, request(admin=False))
    assert stored_jobs(unconfined) == 0 and leftovers(unconfined) == []
    checked = pipeline.check(unconfined, request(admin=False))
    assert [p.location for p in checked.problems] == [("service",)]
    assert pipeline.submit(unconfined, request(admin=True)).job.owner_id == 7


def test_the_operator_may_choose_no_sandbox(unconfined: Core) -> None:
    chosen = unconfined.settings.sandbox.model_copy(update={"mode": "none"})
    unconfined.settings = unconfined.settings.model_copy(update={"sandbox": chosen})
    assert pipeline.submit(unconfined, request(admin=False)).job.owner_id == 7
