"""Progress of one AlphaFold 3 task, read from the lines ``run_alphafold.py`` prints.

Stages are spec/native.md §1's AlphaFold 3 stages, each owning a band of the percentage.
The patterns match the ``print`` calls of google-deepmind/alphafold3 ``run_alphafold.py`` and
``src/alphafold3/data/featurisation.py`` (quoted on each rule), searched anywhere in a line so
absl prefixes (``I0403 15:33:05.314379 … pipeline.py:82] …``) do not matter.

Upstream runs the whole network (trunk recycles and diffusion) as one jitted call and prints
nothing inside it; lines carrying ``recycle 3/10`` or ``diffusion step 50/200`` (instrumented
builds, Cyclotron's test double) move the counters within the recycling and diffusion bands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cyclotron.domain.ports import ProgressReport

# (stage, start percent); a stage ends where the next one starts.
BANDS: dict[str, float] = {
    "startup": 0.0,
    "weight_loading": 2.0,
    "data_pipeline": 5.0,
    "feature_preparation": 40.0,
    "recycling": 50.0,
    "diffusion": 65.0,
    "confidence": 85.0,
    "ranking": 90.0,
    "output_writing": 93.0,
    "done": 100.0,
}
_STAGES = tuple(BANDS)
_PER_SEED = ("feature_preparation", "recycling", "diffusion", "confidence")
_MODEL_START, _MODEL_END = BANDS["recycling"], BANDS["ranking"]


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern[str]
    stage: str
    # Fraction of the stage's band reached by the line; None = advance by half what is left.
    fraction: float | None = 0.0


def _rule(regex: str, stage: str, fraction: float | None = 0.0) -> _Rule:
    return _Rule(re.compile(regex), stage, fraction)


_RULES = (
    # print('\n' + '\n'.join(notice)): "Running AlphaFold 3. Please note that standard ..."
    _rule(r"^Running AlphaFold 3\. ", "startup"),
    # "Found local {BACKEND} devices: [...], using device 0: cuda:0"
    _rule(r"^Found local (?:\w+ )?devices: ", "startup", 0.5),
    # "Building model from scratch..."
    _rule(r"^Building model from scratch\.\.\.", "weight_loading"),
    # "Checking that model parameters can be loaded..."
    _rule(r"^Checking that model parameters can be loaded", "weight_loading", 0.5),
    # "Running data pipeline..." and "Skipping data pipeline..."
    _rule(r"^(?:Running|Skipping) data pipeline\.\.\.", "data_pipeline"),
    # "Running data pipeline for chain A..." and "... for chain A took 535.51 seconds"
    _rule(r"^Running data pipeline for chain \S+", "data_pipeline", None),
    # "Writing model input JSON to /root/af_output/2pv7/2pv7_data.json"
    _rule(r"^Writing model input JSON to ", "data_pipeline", 1.0),
    # "Predicting 3D structure for 2PV7 with 1 seed(s)..." / "Featurising data with 1 seed(s)..."
    _rule(
        r"^(?:Predicting 3D structure for .+|Featurising data) with \d+ seed\(s\)",
        "feature_preparation",
    ),
    # featurisation.py: "Featurising data with seed 1." / "... with seed 1 took 7.07 seconds."
    _rule(r"^Featurising data with seed -?\d+\.", "feature_preparation", 0.1),
    _rule(r"^Featurising data with seed -?\d+ took", "feature_preparation", 1.0),
    # "Running model inference with seed 1..." (the jitted trunk, then diffusion)
    _rule(r"^Running model inference with seed -?\d+\.\.\.", "recycling"),
    # "Running model inference with seed 1 took 129.31 seconds."
    _rule(r"^Running model inference with seed -?\d+ took", "diffusion", 1.0),
    # "Extracting inference results with seed 1..." (confidence metrics per sample)
    _rule(r"^Extracting inference results with seed -?\d+", "confidence"),
    # "Extracting 5 inference samples with seed 1 took 0.45 seconds."
    _rule(r"^Extracting \d+ inference samples with seed", "confidence", 1.0),
    # "Running model inference and extracting output structures with 1 seed(s) took 129.76 seconds."
    _rule(r"^Running model inference and extracting output structures with .* took", "ranking"),
    # "Writing outputs with 1 seed(s)..."
    _rule(r"^Writing outputs with \d+ seed\(s\)", "output_writing"),
    # "Fold job 2PV7 done, output written to /root/af_output/2pv7" and "Done running 1 fold jobs."
    _rule(r"^(?:Fold job .+ done, output written to |Done running \d+ fold jobs)", "done"),
)
_SEEDS = re.compile(r"with (\d+) seed\(s\)")
_RECYCLE = re.compile(r"\brecycl\w*\D{0,12}?(\d+)\s*(?:/|of)\s*(\d+)", re.IGNORECASE)
_DIFFUSION = re.compile(r"\bdiffusion\D{0,12}?(\d+)\s*(?:/|of)\s*(\d+)", re.IGNORECASE)
# The lines that start one seed's featurisation, or one seed's run of the model.
_SEED_STARTS = (
    (re.compile(r"^Featurising data with seed -?\d+\."), "feature_preparation"),
    (re.compile(r"^Running model inference with seed -?\d+\.\.\."), "model"),
)


class AlphaFoldProgress:
    """A stateful parser for one task's output: call it with each line, in order.

    The percentage never goes back. With several seeds in one run (``with N seed(s)``), the
    featurisation and model bands are shared out between the seeds in the order they run.
    """

    def __init__(self) -> None:
        self.stage: str | None = None
        self.percent = 0.0
        self.recycling_iteration: int | None = None
        self.recycling_total: int | None = None
        self.diffusion_step: int | None = None
        self.diffusion_total: int | None = None
        self._num_seeds = 1
        self._seed_starts: dict[str, int] = {}  # seeds started so far, per kind
        self._fraction = 0.0

    def __call__(self, line: str) -> ProgressReport | None:
        text = _strip_absl(line.strip())
        if seeds := _SEEDS.search(text):
            self._num_seeds = max(1, int(seeds[1]))
        if counter := _RECYCLE.search(text):
            self.recycling_iteration, self.recycling_total = int(counter[1]), int(counter[2])
            return self._move("recycling", _ratio(self.recycling_iteration, self.recycling_total))
        if counter := _DIFFUSION.search(text):
            self.diffusion_step, self.diffusion_total = int(counter[1]), int(counter[2])
            return self._move("diffusion", _ratio(self.diffusion_step, self.diffusion_total))
        for rule in _RULES:
            if rule.pattern.search(text):
                for start, kind in _SEED_STARTS:
                    if start.search(text):
                        self._seed_starts[kind] = self._seed_starts.get(kind, 0) + 1
                if rule.fraction is None:
                    fraction = (
                        self._fraction + (1.0 - self._fraction) / 2
                        if self.stage == rule.stage
                        else 0.5
                    )
                else:
                    fraction = rule.fraction
                return self._move(rule.stage, fraction)
        return None

    def report(self) -> ProgressReport:
        """The position now, as a percentage of the task."""
        counters = {
            name: value
            for name, value in (
                ("recycling_iteration", self.recycling_iteration),
                ("recycling_total", self.recycling_total),
                ("diffusion_step", self.diffusion_step),
                ("diffusion_total", self.diffusion_total),
            )
            if value is not None
        }
        return ProgressReport(
            done=round(self.percent, 2), total=100.0, stage=self.stage, counters=counters
        )

    def _move(self, stage: str, fraction: float) -> ProgressReport:
        percent = self._percent(stage, fraction)
        if percent >= self.percent:
            self.percent, self.stage, self._fraction = percent, stage, fraction
        return self.report()

    def _percent(self, stage: str, fraction: float) -> float:
        if stage == "done":
            return 100.0
        start, end = _band(stage)
        local = start + (end - start) * min(max(fraction, 0.0), 1.0)
        n = self._num_seeds
        if n == 1 or stage not in _PER_SEED:
            return local
        # run_alphafold.py featurises every seed, then runs the model seed after seed: seed i of
        # n takes the i-th n-th of the featurisation band, or of the whole model band.
        kind = "feature_preparation" if stage == "feature_preparation" else "model"
        low, high = (start, end) if kind == "feature_preparation" else (_MODEL_START, _MODEL_END)
        i = min(max(self._seed_starts.get(kind, 1), 1), n) - 1
        return low + (high - low) * (i + (local - low) / (high - low)) / n


def _band(stage: str) -> tuple[float, float]:
    index = _STAGES.index(stage)
    return BANDS[stage], BANDS[_STAGES[index + 1]]


def _ratio(done: int, total: int) -> float:
    return done / total if total > 0 else 0.0


def _strip_absl(text: str) -> str:
    """Drop an absl log prefix (``I0403 15:33:05.314379 140574038458496 pipeline.py:82] ``)."""
    head, sep, tail = text.partition("] ")
    return tail if sep and re.match(r"^[IWEF]\d{4} ", head) else text
