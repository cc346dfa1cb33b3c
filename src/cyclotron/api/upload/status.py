"""The orchestrator's ten status names, derived from the core state (spec/orchestrator.md §4)."""

from __future__ import annotations

from cyclotron.domain.records import ErrorKind, JobRecord
from cyclotron.domain.states import JOB_TERMINAL, JobStage, JobState

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Invalid", "Killed", "Cleaned"})
CLEANED_MESSAGE = "Job files have been removed"

_PENDING_BY_STAGE = {
    JobStage.QUEUED: "Queued",
    JobStage.PREPARING: "Processing",
    JobStage.SUBMITTED: "Submitted",
}


def upload_status(job: JobRecord) -> str:
    if job.cleaned_at is not None and job.state in JOB_TERMINAL:
        return "Cleaned"
    match job.state:
        case JobState.UNKNOWN:
            return "Unknown"
        case JobState.PENDING:
            return _PENDING_BY_STAGE.get(job.stage, "Submitted")
        case JobState.RUNNING | JobState.MERGING_QUEUED | JobState.MERGING_RUNNING:
            return "Running"
        case JobState.COMPLETED:
            return "Completed"
        case JobState.FAILED:
            return "Invalid" if job.error_kind == ErrorKind.INVALID else "Failed"
        case JobState.CANCELED:
            return "Killed"
    return "Unknown"  # pragma: no cover - every state is matched above


def upload_message(job: JobRecord) -> str:
    """Empty while active; the reason for Failed, Invalid, Killed and Cleaned."""
    status = upload_status(job)
    if status == "Cleaned":
        return CLEANED_MESSAGE
    if status in ("Failed", "Invalid", "Killed"):
        return job.error or status
    return ""
