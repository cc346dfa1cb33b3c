"""A Python client of Cyclotron's native ``/api`` (spec/native.md), on httpx.

    from cyclotron.client import Client

    with Client("http://127.0.0.1:5000", api_key="cyc_…") as cyclotron:
        job = cyclotron.submit_editor("ex1.json", service="builtin", ntasks=4)
        cyclotron.wait(job.id, lambda event: print(event.type, event.percent))
        dose = cyclotron.results(job.id)["z_profile"].page(0)
        print(dose.axes[0].label, dose.values.max())

``AsyncClient`` has the same methods for asyncio. The client speaks HTTP only: it imports
nothing of the server, so it can be used from any machine with ``httpx`` and NumPy.
"""

from cyclotron.client.aio import AsyncClient
from cyclotron.client.errors import (
    ApiError,
    BadRequest,
    Conflict,
    ConnectionFailed,
    CyclotronError,
    Forbidden,
    Gone,
    InvalidRequest,
    NotFound,
    Problem,
    QueueFull,
    Unauthorized,
    Unavailable,
    WaitTimeout,
)
from cyclotron.client.models import (
    Job,
    JobDetail,
    JobError,
    JobFile,
    JobPage,
    ProgressEvent,
    Submitted,
    Task,
    TaskLog,
    UploadStatus,
    Validation,
)
from cyclotron.client.results import Axis, Estimator, Page, Results, SampleConfidence
from cyclotron.client.sync import Client

__all__ = [
    "ApiError",
    "AsyncClient",
    "Axis",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "CyclotronError",
    "Estimator",
    "Forbidden",
    "Gone",
    "InvalidRequest",
    "Job",
    "JobDetail",
    "JobError",
    "JobFile",
    "JobPage",
    "NotFound",
    "Page",
    "Problem",
    "ProgressEvent",
    "QueueFull",
    "Results",
    "SampleConfidence",
    "Submitted",
    "Task",
    "TaskLog",
    "Unauthorized",
    "Unavailable",
    "UploadStatus",
    "Validation",
    "WaitTimeout",
]
