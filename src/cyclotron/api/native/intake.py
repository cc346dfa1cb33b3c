"""The native face's submission body (spec/native.md §4), read into an intake request.

A body is a ``JobSubmission``, or an AlphaFold 3 body sent as-is (no ``input``, a
``sequences`` key), which goes to ``[api] alphafold3_service``. Schema errors are FastAPI's
422 list; everything the services refuse comes back from intake with its location.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi.exceptions import RequestValidationError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    model_validator,
)

from cyclotron.domain.ports import MAX_SEED
from cyclotron.domain.records import Caller
from cyclotron.errors import InputError
from cyclotron.services.core import Core
from cyclotron.services.intake import request as intake


class Base64Content(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base64: str


class FilesInput(BaseModel):
    """``{"kind": "files", "files": {"run.sh": "<text>", "data.bin": {"base64": "..."}}}``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["files"]
    files: dict[str, str | Base64Content] = Field(min_length=1)
    primaries: StrictInt | None = Field(None, ge=1)


class EditorInput(BaseModel):
    """``{"kind": "editor", "project": {...}, "primaries": 10000}``: a YAPTIDE editor project."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["editor"]
    project: dict[str, Any]
    primaries: StrictInt | None = Field(None, ge=1)


class Af3Input(BaseModel):
    """``{"kind": "af3", "job": {...}}``: an AlphaFold 3 body, one task per model seed."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["af3"]
    job: dict[str, Any]


class JobSubmission(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    title: str | None = Field(None, min_length=1, max_length=200)
    service: str
    # Strict: a boolean or a string of digits is not a number here (spec/native.md §4.1).
    ntasks: StrictInt = Field(1, ge=1)
    input: Annotated[FilesInput | EditorInput | Af3Input, Field(discriminator="kind")]
    seeds: list[Annotated[StrictInt, Field(ge=0, le=MAX_SEED)]] | None = None
    priority: StrictInt = Field(0, ge=-10, le=10)
    options: dict[str, Any] = Field(default_factory=dict)
    reuse: StrictBool = False

    @model_validator(mode="after")
    def _consistent(self) -> JobSubmission:
        if self.name is not None and self.title is not None and self.name != self.title:
            raise ValueError("name and title differ")
        if isinstance(self.input, Af3Input) and self.seeds is not None:
            raise ValueError("seeds must be absent: the AlphaFold 3 job's modelSeeds are used")
        if self.seeds is not None:
            if len(self.seeds) != self.ntasks:
                raise ValueError(f"seeds must have exactly ntasks ({self.ntasks}) values")
            if len(set(self.seeds)) != len(self.seeds):
                raise ValueError("seeds must be distinct")
        return self


def read_request(core: Core, caller: Caller, body: object) -> intake.IntakeRequest:
    """The intake request of a body (RequestValidationError: FastAPI's 422 list)."""
    as_is = isinstance(body, dict) and "input" not in body and "sequences" in body
    if isinstance(body, dict) and as_is:
        service = core.settings.api.alphafold3_service
        if service not in core.catalog.names():
            raise InputError(f"no AlphaFold 3 service is configured (looked for {service!r})")
        name = body.get("name")
        wrapped: dict[str, Any] = {"service": service, "input": {"kind": "af3", "job": body}}
        if isinstance(name, str) and name.strip():
            wrapped["name"] = name.strip()[:200]
        body = wrapped
    try:
        submission = JobSubmission.model_validate(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None
    return intake.IntakeRequest(
        owner_id=caller.user_id or 0,
        service=submission.service,
        input=_input(submission.input, as_is),
        name=submission.name or submission.title or "unnamed",
        ntasks=submission.ntasks if "ntasks" in submission.model_fields_set else None,
        seeds=submission.seeds,
        priority=submission.priority,
        admin=caller.admin,
        reuse=submission.reuse,
        options=submission.options,
        queue_limits=True,
    )


def _input(given: FilesInput | EditorInput | Af3Input, as_is: bool) -> intake.JobInput:
    if isinstance(given, EditorInput):
        return intake.EditorInput(given.project, given.primaries)
    if isinstance(given, Af3Input):
        # A body sent as-is has its problems located in the body itself (spec §4.2).
        return intake.DocumentInput(given.job, () if as_is else ("input", "job"))
    return intake.FilesInput(
        {name: _decoded(name, content) for name, content in given.files.items()},
        given.primaries,
    )


def _decoded(name: str, content: str | Base64Content) -> bytes:
    if isinstance(content, str):
        return content.encode("utf-8")
    try:
        return base64.b64decode(content.base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"invalid base64: {exc}", ("input", "files", name)) from None
