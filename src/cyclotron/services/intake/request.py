"""What a face asks intake to run, in no face's words: the service, the input, the tasks.

Each face reads its own request shape into an ``IntakeRequest`` and makes one call into
``services.intake.pipeline``; what differs between the faces' contracts is said here as data
(when the input is checked, whether queue limits refuse, what a YAPTIDE simulation keeps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cyclotron.domain.primaries import MAX_PRIMARIES

if TYPE_CHECKING:
    from cyclotron.signing import SigningKeys


@dataclass(frozen=True)
class FilesInput:
    """The engine's input files as sent, by name. ``primaries``: the total the files must state."""

    files: Mapping[str, bytes]
    primaries: int | None = None
    kind: str = "files"


@dataclass(frozen=True)
class EditorInput:
    """A YAPTIDE editor project; ``primaries`` replaces its beam's number of particles."""

    project: Mapping[str, Any]
    primaries: int | None = None
    kind: str = "editor"

    @property
    def stated_primaries(self) -> int | None:
        """The project's beam's number of particles, when it is a whole number in range."""
        beam = self.project_with_primaries().get("beam")
        value = beam.get("numberOfParticles") if isinstance(beam, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if not float(value).is_integer() or not 1 <= value <= MAX_PRIMARIES:
            return None
        return int(value)

    def project_with_primaries(self) -> Mapping[str, Any]:
        if self.primaries is None:
            return self.project
        beam = self.project.get("beam")
        beam = dict(beam) if isinstance(beam, Mapping) else {}
        return {**self.project, "beam": {**beam, "numberOfParticles": self.primaries}}


@dataclass(frozen=True)
class DocumentInput:
    """One document the service's plug-in plans itself (an AlphaFold 3 body): one task per
    seed it names. ``location``: where the document sits in the request, for its problems."""

    document: Mapping[str, Any]
    location: tuple[str | int, ...] = ()
    kind: str = "af3"


@dataclass(frozen=True)
class StagedInput:
    """Files a face already streamed into ``<staging>/input`` (a multipart upload). Intake
    owns the staging area from the call on and removes it, whatever happens."""

    staging: Path
    primaries: int | None = None
    kind: str = "files"


JobInput = FilesInput | EditorInput | DocumentInput | StagedInput


@dataclass(frozen=True)
class YaptideSimulation:
    """What a YAPTIDE simulation keeps beyond any job: its title and platform, the sim_type
    it named (refused in YAPTIDE's words), a batch job's cluster options."""

    sim_type: str
    title: str
    input_type: str
    platform: str
    keys: SigningKeys  # derive the job's update key
    # A batch job's options as sent (``{}`` for none); intake replaces them with the cluster's
    # checked options. None: a direct job.
    batch: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class IdempotencyKey:
    """The ``Idempotency-Key`` a submission was sent with, and the digest of the request as its
    face reads it: the same key and digest from the same owner within a day get the first
    submission's answer again."""

    key: str
    digest: str


@dataclass(frozen=True)
class Answer:
    """What a face answered a submission (kept with its idempotency key, to answer again)."""

    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class IntakeRequest:
    """A submission as every face hands it to intake."""

    owner_id: int
    service: str
    input: JobInput
    # None: ``<name_prefix>-<number>``.
    name: str | None = None
    name_prefix: str = "job"
    # None: one task per seed (given, or a document's), else one.
    ntasks: int | None = None
    seeds: Sequence[int] | None = None
    priority: int = 0
    # The caller is an admin (or the server has no auth): it may raise priority above 0, and
    # reuse the results of any job it can see.
    admin: bool = True
    reuse: bool = False
    # Options no service understands yet: any given is refused, naming it.
    options: Mapping[str, Any] = field(default_factory=dict)
    # Refuse (429) when the service's queue or the owner's share of it is full.
    queue_limits: bool = False
    # Check the input now (refusing it), or when the dispatcher prepares the job (the job
    # then ends invalid): the file-upload face accepts first and judges later.
    check_now: bool = True
    # An ``ntasks`` below one means one task (YAPTIDE); other faces refuse it. Above the
    # primaries every face refuses it (docs/submissions.md).
    fit_ntasks: bool = False
    yaptide: YaptideSimulation | None = None
    idempotency: IdempotencyKey | None = None

    @property
    def primaries(self) -> int | None:
        """The total number of primaries the request gives, if it gives one."""
        return getattr(self.input, "primaries", None)
