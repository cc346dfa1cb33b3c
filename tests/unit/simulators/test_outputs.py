"""Reading engine outputs into results.md estimators, checked against the fixtures' README.

The expected numbers are parsed from ``../shared/fixtures/shieldhit/README.md`` (its per-file
table and its merge reference table), not copied here, so every file the README lists is
checked against what the README states.
"""

from __future__ import annotations

import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cyclotron.estimators import merge_task_results, validate_estimators
from cyclotron.simulators.outputs import OutputError, read_estimator, read_task_outputs

FIXTURES = Path(__file__).parents[3] / ".." / "shared" / "fixtures" / "shieldhit"
README = FIXTURES / "README.md"

pytestmark = pytest.mark.skipif(
    not README.is_file(), reason=f"SHIELD-HIT12A fixtures not found at {FIXTURES.resolve()}"
)

REL = 1e-6  # the README writes 10 significant digits


# --- the README's tables -------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    name: str
    n: int
    low: float
    high: float
    unit: str
    log: bool = False

    def centres(self) -> list[float]:
        k = np.arange(self.n) + 0.5
        if self.log:
            return list(self.low * (self.high / self.low) ** (k / self.n))
        return list(self.low + k * (self.high - self.low) / self.n)


@dataclass(frozen=True)
class PageRow:
    name: str
    unit: str
    dettyp: str
    norm: str  # "none" where the file has no tag
    filter_name: str | None
    count: int
    shape: tuple[int, ...]
    total: float
    diff_axes: tuple[Axis, ...]


@dataclass
class FileRow:
    path: str
    geo: str
    primaries: int
    mesh: tuple[Axis, ...]
    pages: list[PageRow]


@dataclass(frozen=True)
class MergedPage:
    name: str
    norm: str
    count: int
    total: float
    error_total: float | None


@dataclass(frozen=True)
class MergeRow:
    files: tuple[str, ...]
    primaries: int
    pages: tuple[MergedPage, ...]


AXIS = re.compile(r"^(?P<name>.*?) (?P<n>\d+) \[(?P<low>[^,]+), (?P<high>[^\]]+)\] ?(?P<unit>.*)$")
DIFF_AXIS = re.compile(
    r"diff\d: (?P<n>\d+) \[(?P<low>[^,]+), (?P<high>[^\]]+)\] "
    r"unit '(?P<unit>[^']*)' (?P<bin>lin|log)"
)
VALUES = re.compile(r"^(?P<count>\d+) \((?P<shape>[\d×]+)\)$")
NORM = re.compile(r"^(?P<norm>\w+)(?: \(filter (?P<filter>\w+)\))?$")
MERGED = re.compile(
    r"(?P<name>\w+) \(norm (?P<norm>\w+)\): n=(?P<n>\d+), sum=(?P<sum>[-+.e\d]+)"
    r"(?:, sum of std\. errors=(?P<err>[-+.e\d]+))?"
)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _section(text: str, heading: str) -> list[list[str]]:
    """Rows of the table that follows ``heading`` (header and rule left out)."""
    lines = text[text.index(heading) :].splitlines()[1:]
    rows: list[list[str]] = []
    for line in lines:
        if line.startswith("|"):
            rows.append(_cells(line))
        elif rows:
            break
    return rows[2:]


def _unquote(cell: str) -> str:
    return cell.strip("`")


def _mesh(cell: str) -> tuple[Axis, ...]:
    axes = []
    for part in cell.split(" · "):
        match = AXIS.match(part)
        if match:
            name = "" if match["name"] == "-" else match["name"]
            low, high = float(match["low"]), float(match["high"])
            axes.append(Axis(name, int(match["n"]), low, high, match["unit"]))
    return tuple(axes)


def _page_row(cells: list[str]) -> PageRow:
    name, unit, dettyp, norm_cell = cells[6].split(" / ")
    norm = NORM.match(norm_cell)
    values = VALUES.match(cells[9])
    assert norm and values, cells
    diff_axes = tuple(
        Axis("", int(m["n"]), float(m["low"]), float(m["high"]), m["unit"], m["bin"] == "log")
        for m in DIFF_AXIS.finditer(cells[8])
    )
    return PageRow(
        name=name,
        unit="" if unit == "—" else unit,
        dettyp=dettyp.split(" (")[0],
        norm=norm["norm"],
        filter_name=norm["filter"],
        count=int(values["count"]),
        shape=tuple(int(n) for n in values["shape"].split("×")),
        total=float(cells[10]),
        diff_axes=diff_axes,
    )


def _file_table(text: str) -> tuple[list[FileRow], dict[str, str]]:
    """Readable engine files (``.bdo`` and FLUKA) with their pages; unreadable ones → error."""
    files: list[FileRow] = []
    unreadable: dict[str, str] = {}
    rows = _section(text, "### SHIELD-HIT12A binary outputs")
    rows += _section(text, "### FLUKA and TOPAS outputs")
    for cells in rows:
        if cells[0] == "(same file)":
            if files:
                files[-1].pages.append(_page_row(cells))
            continue
        path = _unquote(cells[0])
        if cells[2] == "not readable":
            unreadable[path] = cells[6].split("`")[1]
        elif path.endswith(".bdo") or "_fort." in path:
            mesh = _mesh(cells[5])
            files.append(FileRow(path, cells[3], int(cells[4]), mesh, [_page_row(cells)]))
    return files, unreadable


def _expand(pattern: str) -> tuple[str, ...]:
    """``a_{0001..0003,0011}.bdo`` → the files it names, in that order."""
    match = re.fullmatch(r"(?P<head>[^{]*)\{(?P<items>[^}]*)\}(?P<tail>\S*)", pattern)
    assert match, pattern
    names: list[str] = []
    for item in match["items"].split(","):
        first, _, last = item.partition("..")
        width = len(first)
        for number in range(int(first), int(last or first) + 1):
            names.append(f"{match['head']}{number:0{width}d}{match['tail']}")
    return tuple(names)


def _merge_table(text: str) -> list[MergeRow]:
    rows = []
    for cells in _section(text, "## Merge reference values"):
        files = _expand(_unquote(cells[0].split(" (")[0]))
        assert len(files) == int(cells[1]), cells
        pages = tuple(
            MergedPage(
                m["name"], m["norm"], int(m["n"]), float(m["sum"]), m["err"] and float(m["err"])
            )
            for m in MERGED.finditer(cells[3])
        )
        rows.append(MergeRow(files, int(cells[2]), pages))
    return rows


def _readme() -> str:
    return README.read_text(encoding="utf-8") if README.is_file() else ""


FILES, UNREADABLE = _file_table(_readme()) if README.is_file() else ([], {})
MERGES = _merge_table(_readme()) if README.is_file() else []


def _close(actual: float, expected: float, rel: float = REL) -> bool:
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-12)


def _flat(values: list[Any]) -> list[float]:
    """Every number of a page, records (MCPL) included."""
    flat: list[float] = []
    for value in values:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


# --- reading every file the README lists ---------------------------------------------------


def test_the_readme_lists_every_bdo_file_in_the_fixtures() -> None:
    on_disk = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*.bdo")}
    listed = {row.path for row in FILES if row.path.endswith(".bdo")} | set(UNREADABLE)
    assert listed == on_disk
    assert sum(len(row.pages) for row in FILES) > len(FILES)  # continuation rows were read
    assert any("_fort." in row.path for row in FILES)


@pytest.mark.parametrize("row", FILES, ids=[row.path for row in FILES])
def test_each_file_reads_as_the_readme_states(row: FileRow) -> None:
    estimator = read_estimator(FIXTURES / row.path)

    assert validate_estimators([estimator]) == [estimator]
    metadata = estimator["metadata"]
    assert all(isinstance(value, str) for value in metadata.values())
    assert metadata["number_of_primaries"] == str(row.primaries)
    assert metadata["file_counter"] == "1"
    assert metadata["page_count"] == str(len(row.pages))
    assert estimator["name"] == metadata["file_corename"]
    assert not metadata["file_corename"].endswith("_")
    if row.geo:
        assert metadata["geotyp"] == row.geo

    pages = estimator["pages"]
    assert len(pages) == len(row.pages)
    assert [page["metadata"]["page_number"] for page in pages] == [
        str(i) for i in range(len(pages))
    ]
    for page, expected in zip(pages, row.pages, strict=True):
        _check_page(page, expected, row)


def _check_page(page: dict[str, Any], expected: PageRow, row: FileRow) -> None:
    where = f"{row.path}, page {page['metadata']['page_number']}"
    metadata = page["metadata"]
    assert (page["data"]["name"], page["data"]["unit"]) == (expected.name, expected.unit), where
    assert (metadata["name"], metadata["unit"]) == (expected.name, expected.unit), where
    if expected.dettyp != "—":
        assert metadata["dettyp"] == expected.dettyp, where
    if expected.norm == "none":
        assert "page_normalized" not in metadata, where
    else:
        assert metadata["page_normalized"] == expected.norm, where
    assert metadata.get("page_filter_name") == expected.filter_name, where

    values = page["data"]["values"]
    flat = _flat(values)
    assert len(flat) == expected.count, where
    assert _close(sum(v for v in flat if v is not None), expected.total), where

    if metadata.get("page_normalized") == "4":
        fields, particles = expected.shape
        assert page["dimensions"] == 0, where
        assert len(values) == particles, where
        assert all(len(record) == fields for record in values), where
        return

    # The axes with more than one bin, spatial then differential, in that order (§4).
    assert expected.shape == tuple(axis.n for axis in row.mesh) + _diff_sizes(expected), where
    mesh = [axis for axis in row.mesh if axis.n > 1]
    binned = mesh + [axis for axis in expected.diff_axes if axis.n > 1]
    assert page["dimensions"] == len(binned), where
    assert len(values) == math.prod(axis.n for axis in binned), where
    for k, axis in enumerate(binned, start=1):
        got = page[f"axis_dim{k}"]
        if k <= len(mesh):  # differential axes: see test_differential_axes_take_their_units…
            assert (got["name"], got["unit"]) == (axis.name, axis.unit), where
        # ZONE scoring has one value per zone, the zone numbers.
        wanted = [axis.low + i for i in range(axis.n)] if row.geo == "ZONE" else axis.centres()
        assert len(got["values"]) == axis.n, where
        assert all(_close(a, b) for a, b in zip(got["values"], wanted, strict=True)), where


def _diff_sizes(page: PageRow) -> tuple[int, int]:
    sizes = [axis.n for axis in page.diff_axes] + [1, 1]
    return sizes[0], sizes[1]


@pytest.mark.parametrize(
    ("name", "bin_", "position"),
    [
        ("v1.0.0/ex_yzmsh.bdo", (0, 50, 7), 50 + 100 * 7),  # bdo2019: stored x fastest
        ("generated/single/msh/en_xy_p.bdo", (5, 4, 0), 5 + 10 * 4),  # bin2010: read in C order
    ],
)
def test_values_are_in_fortran_order_whatever_the_file_layout(
    name: str, bin_: tuple[int, int, int], position: int
) -> None:
    from pymchelper.input_output import fromfile

    path = FIXTURES / name
    expected = fromfile(str(path)).pages[0].data[(*bin_, 0, 0)]  # pymchelper's (x, y, z) view
    assert expected > 0
    assert read_estimator(path)["pages"][0]["data"]["values"][position] == expected


def test_differential_axes_take_their_units_from_the_page_tag() -> None:
    page = read_estimator(FIXTURES / "diff_scoring" / "fluence_2d_log.bdo")["pages"][0]
    assert page["metadata"]["page_diff_units"] == "/cm^2;MeV;deg"
    assert (page["axis_dim1"]["unit"], page["axis_dim2"]["unit"]) == ("MeV", "deg")
    assert page["metadata"]["page_diff_size"] == "[10  5]"
    # 10 log bins over [0.01, 100]: geometric means of the edges, 10^-2 · 10^(0.4 (k + 1/2)).
    assert page["axis_dim1"]["values"][0] == pytest.approx(0.01 * 10**0.2, rel=1e-12)


def test_phase_space_records_hold_one_particle_each() -> None:
    page = read_estimator(FIXTURES / "averaging" / "normalisation-4_aggregation-concat_0013.bdo")
    records = page["pages"][0]["data"]["values"]
    assert len(records) == 6
    assert {record[0] for record in records} == {1000060120.0}  # PDG code of carbon-12
    assert all(2600 < record[7] < 2800 for record in records)


def test_a_name_given_replaces_the_core_name_only_in_name() -> None:
    estimator = read_estimator(FIXTURES / "mocks" / "shieldhit_minimal" / "mesh.bdo", "z_profile")
    assert estimator["name"] == "z_profile"
    assert estimator["metadata"]["file_corename"] == "mesh"


# --- unreadable files ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(UNREADABLE))
def test_an_unreadable_file_raises_output_error_naming_it(name: str) -> None:
    path = FIXTURES / name
    with pytest.raises(OutputError) as caught:
        read_estimator(path)
    message = str(caught.value)
    assert path.name in message
    assert caught.value.path == path
    if path.stat().st_size == 0:
        assert "empty" in message
    else:
        assert "truncated or corrupt" in message
        assert UNREADABLE[name] in message  # pymchelper's own error, for the log reader


def test_a_file_with_no_pages_raises_output_error(tmp_path: Path) -> None:
    source = (FIXTURES / "diff_scoring" / "fluence_elin.bdo").read_bytes()
    first_page = next(offset for tag, offset, _ in _bdo_tags(source) if tag == DETECTOR_TYPE)
    path = tmp_path / "nopages_0001.bdo"
    path.write_bytes(source[:first_page])
    with pytest.raises(OutputError, match=r"nopages_0001\.bdo: the file holds no pages"):
        read_estimator(path)


def test_a_phase_space_page_of_one_particle_is_one_record(tmp_path: Path) -> None:
    source = (FIXTURES / "averaging" / "normalisation-4_aggregation-concat_0012.bdo").read_bytes()
    _, offset, end = next(t for t in _bdo_tags(source) if t[0] == DATA_BLOCK)
    header = source[offset : offset + 16] + (8).to_bytes(8, "little")  # 8 numbers: 1 particle
    path = tmp_path / "one_0001.bdo"
    path.write_bytes(
        source[:offset] + header + source[offset + 24 : offset + 24 + 64] + source[end:]
    )
    records = read_estimator(path)["pages"][0]["data"]["values"]
    assert len(records) == 1
    assert len(records[0]) == 8
    assert records[0][0] == 1000060120.0


def test_pages_are_ordered_by_page_number_whatever_the_file_order(tmp_path: Path) -> None:
    source = (FIXTURES / "averaging" / "normalisation-5_aggregation-mean_0001.bdo").read_bytes()
    first, second = [offset for tag, offset, _ in _bdo_tags(source) if tag == DETECTOR_TYPE]
    path = tmp_path / "swapped_0001.bdo"
    path.write_bytes(source[:first] + source[second:] + source[first:second])
    pages = read_estimator(path)["pages"]
    assert [(p["metadata"]["page_number"], p["data"]["name"]) for p in pages] == [
        ("0", "DOSE"),
        ("1", "FLUENCE"),
    ]


DETECTOR_TYPE = 0xDD30  # starts a page
DATA_BLOCK = 0xDDBB  # a page's values


def _bdo_tags(data: bytes) -> list[tuple[int, int, int]]:
    """(tag, start, end) of every token of a bdo2019 file: 24 bytes of id, type, count."""
    tags = []
    offset = 24  # magic, endianness and version string
    while offset < len(data):
        tag = int.from_bytes(data[offset : offset + 8], "little")
        item = np.dtype(data[offset + 8 : offset + 16].rstrip(b"\0").decode("ascii"))
        length = int.from_bytes(data[offset + 16 : offset + 24], "little")
        end = offset + 24 + item.itemsize * length
        tags.append((tag, offset, end))
        offset = end
    return tags


def test_a_file_pymchelper_does_not_recognise_raises_output_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.bdo"
    path.write_text("this is not an estimator file\n" * 20)
    with pytest.raises(OutputError, match=r"notes\.bdo"):
        read_estimator(path)


def test_a_missing_file_raises_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=r"absent\.bdo: no such file"):
        read_estimator(tmp_path / "absent.bdo")


# --- a task's outputs ----------------------------------------------------------------------


def test_a_task_directory_gives_one_estimator_per_core_name(tmp_path: Path) -> None:
    shutil.copy(
        FIXTURES / "mocks" / "shieldhit_minimal" / "mesh.bdo", tmp_path / "z_profile_0001.bdo"
    )
    shutil.copy(FIXTURES / "mocks" / "shieldhit_minimal" / "fluence.bdo", tmp_path / "a_0001.bdo")
    (tmp_path / "beam.dat").write_text("NSTAT 20\n")
    estimators = read_task_outputs(tmp_path)
    assert [e["name"] for e in estimators] == ["a", "z_profile"]
    assert [e["metadata"]["file_corename"] for e in estimators] == ["a", "z_profile"]
    assert [e["pages"][0]["data"]["name"] for e in estimators] == ["FLUENCE", "DOSE"]


def test_fluka_units_are_named_by_number(tmp_path: Path) -> None:
    estimators = read_task_outputs(FIXTURES / "fluka" / "fluka_minimal", ("*_fort.*",))
    assert [e["name"] for e in estimators] == ["21", "22"]
    assert [e["pages"][0]["metadata"]["title"] for e in estimators] == ["dose_xz", "dose_xy"]
    # Ascending unit number, not text order.
    for unit in ("9", "21"):
        shutil.copy(
            FIXTURES / "fluka" / "fluka_minimal" / "minimal001_fort.21",
            tmp_path / f"run001_fort.{unit}",
        )
    assert [e["name"] for e in read_task_outputs(tmp_path, ("*_fort.*",))] == ["9", "21"]


def test_a_task_with_an_empty_output_fails_with_the_file_named(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "mocks" / "shieldhit_minimal" / "mesh.bdo", tmp_path / "mesh_0001.bdo")
    (tmp_path / "dose_0001.bdo").write_bytes(b"")
    with pytest.raises(OutputError, match=r"dose_0001\.bdo: the file is empty"):
        read_task_outputs(tmp_path)


def test_two_files_of_one_core_name_are_refused(tmp_path: Path) -> None:
    for seed in ("0001", "0002"):
        shutil.copy(
            FIXTURES / "mocks" / "shieldhit_minimal" / "mesh.bdo", tmp_path / f"mesh_{seed}.bdo"
        )
    with pytest.raises(OutputError, match="same core name 'mesh'"):
        read_task_outputs(tmp_path)


def test_a_task_without_outputs_gives_no_estimators(tmp_path: Path) -> None:
    assert read_task_outputs(tmp_path) == []


# --- merging the averaging set -------------------------------------------------------------


@pytest.mark.parametrize("row", MERGES, ids=[f"{r.files[0]}+{len(r.files) - 1}" for r in MERGES])
def test_merged_seeds_match_the_normalisation_rules_and_the_readme(row: MergeRow) -> None:
    tasks = [(i, [read_estimator(FIXTURES / name)]) for i, name in enumerate(row.files)]
    (merged,) = merge_task_results(tasks)

    assert merged["metadata"]["number_of_primaries"] == str(row.primaries)
    assert merged["metadata"]["file_counter"] == str(len(row.files))
    assert len(merged["pages"]) == len(row.pages)
    w = np.array([int(t[1][0]["metadata"]["number_of_primaries"]) for t in tasks], float)
    for number, (page, expected) in enumerate(zip(merged["pages"], row.pages, strict=True)):
        where = f"{row.files[0]}, page {number}"
        assert page["data"]["name"] == expected.name, where
        assert page["metadata"].get("page_normalized", "none") == expected.norm, where
        inputs = [t[1][0]["pages"][number]["data"]["values"] for t in tasks]
        values = page["data"]["values"]

        # Against the README's reference numbers, then against the rules: 0 first task, 1 sum,
        # 4 joined, else the primaries-weighted mean with the standard error of results.md §6.2.
        flat = _flat(values)
        assert len(flat) == expected.count, where
        assert _close(sum(flat), expected.total), where
        assert (expected.error_total is None) == ("error" not in page), where
        if expected.norm == "4":
            assert values == [record for records in inputs for record in records], where
            continue
        x = np.array(inputs, dtype=float)
        rule = {"0": x[0], "1": x.sum(axis=0)}.get(expected.norm, w @ x / w.sum())
        assert np.allclose(values, rule, rtol=1e-9, atol=0), where
        if expected.norm in ("0", "1"):
            assert "error" not in page, where
            continue
        assert np.allclose(page["error"]["values"], _stderr(x, w), rtol=1e-9, atol=0), where
        # pymchelper 2.9.6, which made the README's numbers, agrees with §6.2 on one-bin pages
        # only; for larger pages the README holds its smaller error (see _pymchelper_stderr).
        assert expected.error_total is not None
        if expected.count == 1:
            assert _close(sum(page["error"]["values"]), expected.error_total), where
        else:
            assert _close(float(_pymchelper_stderr(x, w).sum()), expected.error_total), where


def _stderr(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """results.md §6.2: SE = s·√W2/W with s² = Σw(x − μ)² / (W − W2/W); rows of x are tasks."""
    total, total_sq = w.sum(), (w * w).sum()
    mean = w @ x / total
    s2 = w @ (x - mean) ** 2 / (total - total_sq / total)
    return np.sqrt(s2 * total_sq) / total


def _pymchelper_stderr(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """What pymchelper 2.9.6's WeightedStatsAggregator computes for pages of several bins.

    Its West update keeps ``mean_old = self.data`` and then adds to ``self.data`` in place, so
    for numpy arrays (not for the scalars of one-bin pages) the old mean is the new one, and
    S sums w·(x − μ_new)² instead of w·(x − μ_new)(x − μ_old): the error comes out too small.
    """
    total = total_sq = 0.0
    mean = np.zeros(x.shape[1])
    s = np.zeros(x.shape[1])
    for value, weight in zip(x, w, strict=True):
        total += weight
        total_sq += weight**2
        mean = mean + weight / total * (value - mean)
        s = s + weight * (value - mean) ** 2
    return np.sqrt(s / (total - total_sq / total)) * np.sqrt(total_sq) / total


def test_the_readme_merge_table_covers_every_averaging_family() -> None:
    families = {row.files[0].rsplit("_", 1)[0] for row in MERGES}
    on_disk = {p.name.rsplit("_", 1)[0] for p in (FIXTURES / "averaging").glob("*.bdo")}
    assert {f"averaging/{name}" for name in on_disk} <= families
    assert all(row.pages for row in MERGES)
