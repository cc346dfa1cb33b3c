"""A job's results as NumPy arrays (spec/results.md).

A page's ``values`` come flat in Fortran order (the first axis fastest); here they are
shaped ``(n1, n2, …)`` so that ``page.values[i, j]`` is the bin at ``axes[0].values[i]``,
``axes[1].values[j]``. ``null`` (a value that was not finite) reads as NaN.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from cyclotron.client.models import Json

Array = npt.NDArray[np.float64]


def _floats(values: Sequence[Any]) -> Array:
    flat = [np.nan if v is None else v for v in _flatten(values)]
    return np.asarray(flat, dtype=np.float64)


def _flatten(values: Sequence[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):  # ``[[v]]``, as older writers wrote a 0-D page
            yield from _flatten(value)
        else:
            yield value


@dataclass(frozen=True)
class Axis:
    """One axis of a page: its name, unit and bin centres."""

    name: str
    unit: str
    values: Array = field(repr=False, compare=False)

    @property
    def label(self) -> str:
        """``Position (Z) [cm]``, as a plot's axis title."""
        return f"{self.name} [{self.unit}]" if self.unit else self.name


@dataclass(frozen=True)
class Page:
    """One page of an estimator: the scored quantity over its axes, with its standard error."""

    number: int
    name: str
    unit: str
    dimensions: int
    axes: tuple[Axis, ...]
    values: Array = field(repr=False, compare=False)
    error: Array | None = field(repr=False, compare=False)
    metadata: dict[str, str] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Json) -> Page:
        dimensions = int(body.get("dimensions", 0))
        axes = tuple(
            Axis(a["name"], a.get("unit", ""), _floats(a["values"]))
            for k in range(1, dimensions + 1)
            if (a := body.get(f"axis_dim{k}")) is not None
        )
        shape = tuple(axis.values.size for axis in axes)
        data = body["data"]
        values = _shaped(_floats(data["values"]), shape)
        error = body.get("error")
        metadata = {str(k): str(v) for k, v in body.get("metadata", {}).items()}
        return cls(
            number=int(metadata.get("page_number", 0)),
            name=data.get("name", metadata.get("name", "")),
            unit=data.get("unit", ""),
            dimensions=dimensions,
            axes=axes,
            values=values,
            error=_shaped(_floats(error["values"]), shape) if error else None,
            metadata=metadata,
        )


def _shaped(flat: Array, shape: tuple[int, ...]) -> Array:
    """Fortran-order values in their axes' shape; as they came when they do not fit it
    (phase-space records are lists of any length)."""
    size = int(np.prod(shape)) if shape else 1
    if flat.size != size:
        return flat
    return flat.reshape(shape, order="F") if shape else flat.reshape(())


@dataclass(frozen=True)
class Estimator:
    """One estimator of a simulation: its pages and its metadata (all text)."""

    name: str
    pages: tuple[Page, ...]
    metadata: dict[str, str] = field(repr=False, compare=False)

    @property
    def primaries(self) -> int:
        """The primaries actually simulated by the tasks merged into it."""
        return int(self.metadata.get("number_of_primaries", "0"))

    def page(self, number: int) -> Page:
        """The page whose ``page_number`` is ``number``; KeyError if there is none."""
        for page in self.pages:
            if page.number == number:
                return page
        raise KeyError(f"estimator {self.name!r} has no page {number}")

    @classmethod
    def from_json(cls, body: Json) -> Estimator:
        return cls(
            body["name"],
            tuple(Page.from_json(p) for p in body.get("pages", ())),
            {str(k): str(v) for k, v in body.get("metadata", {}).items()},
        )


@dataclass(frozen=True)
class Results:
    """``GET /api/jobs/{id}/results``: its ``kind`` (``estimators``, ``confidence``,
    ``files``), the estimators of a simulation, and the whole answer in ``raw``."""

    kind: str
    partial: bool
    estimators: tuple[Estimator, ...]
    raw: Json = field(repr=False, compare=False)

    def __getitem__(self, name: str) -> Estimator:
        for estimator in self.estimators:
            if estimator.name == name:
                return estimator
        raise KeyError(f"no estimator named {name!r}")

    def __iter__(self) -> Iterator[Estimator]:
        return iter(self.estimators)

    def __len__(self) -> int:
        return len(self.estimators)

    @classmethod
    def from_json(cls, body: Json) -> Results:
        return cls(
            kind=str(body.get("kind", "")),
            partial=bool(body.get("partial", False)),
            estimators=tuple(Estimator.from_json(e) for e in body.get("estimators", ())),
            raw=body,
        )


@dataclass(frozen=True)
class SampleConfidence:
    """One AlphaFold 3 sample's confidence: pLDDT per residue and per atom, and PAE."""

    sample_index: int
    seed: int | None
    rank: int | None
    ptm: float | None
    iptm: float | None
    mean_plddt: float | None
    plddt: Array = field(repr=False, compare=False)
    atom_plddts: Array = field(repr=False, compare=False)
    pae: Array = field(repr=False, compare=False)
    raw: Json = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Json) -> SampleConfidence:
        pae = body.get("pae") or []
        return cls(
            sample_index=int(body["sample_index"]),
            seed=body.get("seed"),
            rank=body.get("rank"),
            ptm=body.get("ptm"),
            iptm=body.get("iptm"),
            mean_plddt=body.get("mean_plddt"),
            plddt=_floats(body.get("plddt") or []),
            atom_plddts=_floats(body.get("atom_plddts") or []),
            pae=np.asarray(
                [[np.nan if v is None else v for v in row] for row in pae], dtype=np.float64
            ),
            raw=body,
        )
