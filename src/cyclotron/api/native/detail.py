"""A job's detail: the part that shows its tasks is kept, encoded, while they do not change.

A detail shows every task (spec/native.md §5), and a job may have 1,000: reading and
encoding them is most of the answer's cost. A job of many tasks is read with a mark that
changes whenever a task's shown columns do (storage/listing.py); the tasks' part made under
a mark is kept, and a later detail under the same mark reads only the job and its summary.
Under another mark the tasks are read again, and only those whose rows changed are encoded
again.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace
from typing import Any

from fastapi import FastAPI

from cyclotron.api.marked import MarkedMemo, app_memo
from cyclotron.api.native.schemas import TaskParts, detail_body, task_parts
from cyclotron.domain.records import Caller
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, get_job_detail
from cyclotron.services.results.alphafold import alphafold_detail
from cyclotron.services.results.reads import input_files


def task_parts_memo(app: FastAPI) -> MarkedMemo[TaskParts]:
    """The app's memo (one per app: a job's executor is its service's in that app's core)."""
    return app_memo(app, "native_task_parts", MarkedMemo[TaskParts])


def job_detail(
    core: Core, caller: Caller, ref: JobRef, memo: MarkedMemo[TaskParts]
) -> dict[str, Any]:
    """JobDetailPublic's fields, the tasks' part from the memo when it still holds."""
    kept: list[TaskParts] = []

    def held(job_id: str, mark: Hashable) -> bool:
        parts = memo.get(job_id, mark)
        if parts is not None:
            kept.append(parts)
        return parts is not None

    found = get_job_detail(core, caller, ref, held)
    record = found.job
    if found.tasks is not None:
        executor = core.catalog.get(record.service).settings.executor
        if found.tasks_mark is None:
            parts = task_parts(found.tasks, found.shown, record.task_summary, executor)
        else:
            earlier = memo.latest(record.id)
            parts = task_parts(found.tasks, found.shown, record.task_summary, executor, earlier)
            memo.put(record.id, found.tasks_mark, parts)
    else:
        parts = kept[0]
        record = replace(record, summary=parts.summary)
    extra = alphafold_detail(core, record)
    return detail_body(record, parts, input_files(core, record), extra)
