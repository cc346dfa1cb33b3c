"""Cyclotron's one exception tree.

    CyclotronError
    ├── ConfigError              settings that cannot be used; the server does not start
    ├── InputError               a request the caller must fix (bad field, bad file name),
    │                            with each problem's location in the request
    │   └── PayloadTooLarge      a body or file above its limit
    ├── NotFound                 an unknown job, or one the caller may not see
    ├── FilesRemoved             the job is known but retention removed its files
    ├── Forbidden                the caller is known but may not do this
    ├── Unauthorized             no credentials, or unknown ones
    ├── ConflictError            the state of a job does not allow the action
    │   ├── TransitionRefused    a conditional state change lost (the row had moved on)
    │   └── IdempotencyKeyReused an idempotency key sent again with another request
    ├── ServiceUnavailable       a configured service that cannot run jobs now
    ├── QueueFull                a service's or a user's queue is at its limit (retry later)
    ├── RateLimited              too many attempts of one kind (logins) in a short time
    └── PluginError              a plug-in refused or failed (expected outcome, not a bug)

Each API face maps these to its own HTTP shapes in one place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class CyclotronError(Exception):
    """Base of every error Cyclotron raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(CyclotronError):
    """Settings that cannot be used."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request, at ``location``: the path of the value within the
    request's fields (``("ntasks",)``, ``("input", "files", "run.sh")``; empty: the whole)."""

    location: tuple[str | int, ...]
    message: str

    def __str__(self) -> str:
        """``"<dotted location>: <message>"``, or the message alone for the whole request."""
        where = ".".join(str(part) for part in self.location)
        return f"{where}: {self.message}" if where else self.message


class InputError(CyclotronError):
    """A request the caller must fix; ``problems`` says where, one entry per problem found."""

    def __init__(
        self,
        message: str,
        location: tuple[str | int, ...] = (),
        *,
        problems: Sequence[Problem] = (),
    ) -> None:
        found = tuple(problems) or (Problem(location, message),)
        super().__init__("; ".join(str(p) for p in found))
        self.problems = found

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> InputError:
        """One error listing every problem found (at least one)."""
        return cls("", problems=problems)


class PayloadTooLarge(InputError):
    """A request body or file above its limit."""


class NotFound(CyclotronError):
    """An unknown object, or one the caller may not see."""


class FilesRemoved(CyclotronError):
    """The job's files were removed by retention."""


class Superseded(CyclotronError):
    """A report on a task attempt that is no longer wanted (ended, or handed out again)."""


class Forbidden(CyclotronError):
    """The caller may not do this."""


class Unauthorized(CyclotronError):
    """Missing or unknown credentials."""


class ConflictError(CyclotronError):
    """The current state does not allow the action."""


class TransitionRefused(ConflictError):
    """A conditional state change found the row in a state it may not leave that way."""

    def __init__(self, message: str, current: str | None) -> None:
        super().__init__(message)
        self.current = current


class IdempotencyKeyReused(ConflictError):
    """An ``Idempotency-Key`` its owner sent before, within its day, with another request."""


class ServiceUnavailable(CyclotronError):
    """A configured service that cannot run jobs now."""


class QueueFull(CyclotronError):
    """A submission over a queue limit; nothing was stored."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RateLimited(CyclotronError):
    """Too many attempts in a short time; nothing was done."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PluginError(CyclotronError):
    """A plug-in refused the input or failed to run it."""
