"""Primary particles: reading a job's total from its input, and sharing it among tasks."""

from __future__ import annotations

import re
from pathlib import Path

# SHIELD-HIT12A's beam.dat: ``NSTAT  <primaries>  <step of saving>``.
NSTAT_LINE = re.compile(r"^(\s*NSTAT\s+)(\S+)(.*)$", re.MULTILINE)
# FLUKA: the first START card; its WHAT(1) is the number of primaries (fixed or free format).
START_CARD = re.compile(r"^START\b(.*)$", re.MULTILINE)
MAX_PRIMARIES = 10**15


def split_primaries(total: int, ntasks: int) -> list[int]:
    """Task k (0-based) gets ⌊P/n⌋ + 1 when k < P mod n, else ⌊P/n⌋: the sum is exactly P."""
    base, extra = divmod(total, ntasks)
    return [base + 1 if k < extra else base for k in range(ntasks)]


def _integer(text: str) -> int | None:
    try:
        value = float(text.replace("D", "E").replace("d", "e"))
    except ValueError:
        return None
    if not value.is_integer() or not 1 <= value <= MAX_PRIMARIES:
        return None
    return int(value)


def nstat_of(beam_dat: str) -> int | None:
    match = NSTAT_LINE.search(beam_dat)
    return _integer(match.group(2)) if match else None


def start_of(fluka_input: str) -> int | None:
    match = START_CARD.search(fluka_input)
    if match is None:
        return None
    rest = match.group(1)
    if rest.strip().startswith(","):  # free format: START, <what1>, ...
        fields = [f.strip() for f in rest.split(",")[1:]]
        return _integer(fields[0]) if fields and fields[0] else None
    fixed = ("START" + rest)[10:20].strip()  # fixed format: WHAT(1) in columns 11-20
    if fixed:
        return _integer(fixed)
    words = rest.split()
    return _integer(words[0]) if words else None


def with_nstat(beam_dat: str, primaries: int) -> str:
    """beam.dat with its NSTAT value replaced (and nothing else changed)."""
    return NSTAT_LINE.sub(lambda m: f"{m.group(1)}{primaries}{m.group(3)}", beam_dat, count=1)


def primaries_in(input_dir: Path) -> int | None:
    """The job's total primaries: NSTAT of beam.dat, else START of the first ``*.inp``."""
    beam = input_dir / "beam.dat"
    if beam.is_file():
        return nstat_of(beam.read_text(errors="replace"))
    for candidate in sorted(input_dir.glob("*.inp")):
        found = start_of(candidate.read_text(errors="replace"))
        if found is not None:
            return found
    return None
