"""Speed of the ``builtin`` engine's transport: 150 MeV protons in water, one thread.

Builds a 40 × 40 × 40 cm water box (one zone, 1 mm voxels along the beam), warms the numba
kernel up (compiling it, or loading it from numba's cache), then transports ``--primaries``
protons of 150 MeV (1 % energy spread) with a depth-dose sink (``np.bincount`` on z, as
the scoring would do the simplest way), and once more with a sink that does nothing. It
prints primaries per second (wall clock and CPU), steps per primary, nanoseconds per step
and the time the sink took, beside the floor of spec/engines.md: a vectorised NumPy
prototype ran about 45k primaries/s at 150 MeV on one core of this machine.

Run: ``.venv/bin/python bench/builtin_engine.py [--primaries 200000] [--seed 1]``. Always
exits 0 once the runs complete; figures are reported, never enforced. The machine's load
shows on the host line: other work on the same cores makes the figures lower and noisier.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one thread: no BLAS helpers spinning

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import numpy as np  # noqa: E402

from cyclotron.simulators.builtin.transport import simulate  # noqa: E402
from cyclotron.simulators.editor.records import BeamSpec, Medium, StepBatch, VoxelGrid  # noqa: E402

NUMPY_FLOOR = 45_000.0  # primaries/s, spec/engines.md
ENERGY = 150.0  # MeV
VOXEL = 0.1  # cm along the beam


def water_box() -> VoxelGrid:
    nz = int(40.0 / VOXEL)
    return VoxelGrid(
        origin=np.array([-20.0, -20.0, 0.0]),
        spacing=np.array([40.0, 40.0, VOXEL]),
        zones=np.zeros((1, 1, nz), dtype=np.int32),
        zone_names=("water",),
        zone_media=np.array([0], dtype=np.int32),
        media=(Medium(276, "WATER, LIQUID", 1.0),),
    )


def beam() -> BeamSpec:
    return BeamSpec(
        energy=ENERGY,
        energy_sigma=0.01 * ENERGY,
        position=np.array([0.0, 0.0, -1.0]),
        direction=np.array([0.0, 0.0, 1.0]),
    )


@dataclass
class Sink:
    """Counts records and, when ``score`` is set, accumulates a depth-dose curve."""

    score: bool
    records: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        self.dose = np.zeros(int(40.0 / VOXEL))

    def __call__(self, batch: StepBatch) -> None:
        start = time.perf_counter()
        self.records += len(batch)
        if self.score:
            k = np.clip((batch.z / VOXEL).astype(np.int64), 0, self.dose.size - 1)
            self.dose += np.bincount(k, batch.edep, self.dose.size)
        self.seconds += time.perf_counter() - start


def timed(primaries: int, seed: int, sink: Callable[[StepBatch], None]) -> tuple[float, float]:
    """Wall and CPU seconds of one ``simulate`` call."""
    wall, cpu = time.perf_counter(), time.process_time()
    simulate(water_box(), beam(), primaries, seed, sink)
    return time.perf_counter() - wall, time.process_time() - cpu


def report(name: str, primaries: int, sink: Sink, wall: float, cpu: float) -> None:
    rate = primaries / wall
    print(
        f"{name:<18} {rate:>10,.0f} primaries/s wall  {primaries / cpu:>10,.0f} /s CPU  "
        f"{sink.records / primaries:6.1f} steps/primary  {wall / sink.records * 1e9:5.0f} ns/step  "
        f"sink {sink.seconds / wall:5.1%}  vs NumPy floor ×{rate / NUMPY_FLOOR:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--primaries", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"host: {os.cpu_count()} CPUs, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    start = time.perf_counter()
    simulate(water_box(), beam(), 200, args.seed, Sink(score=True))
    print(f"warm-up (compile or load the numba cache, 200 primaries): "
          f"{time.perf_counter() - start:.1f} s")  # fmt: skip
    print(f"{ENERGY:.0f} MeV protons in water, {args.primaries:,} primaries, one thread; "
          f"NumPy prototype floor {NUMPY_FLOOR:,.0f} primaries/s")  # fmt: skip
    for name, score in (("depth-dose sink", True), ("no-op sink", False)):
        sink = Sink(score=score)
        wall, cpu = timed(args.primaries, args.seed, sink)
        report(name, args.primaries, sink, wall, cpu)


if __name__ == "__main__":
    main()
