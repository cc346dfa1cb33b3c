"""AlphaFold 3 progress: stages and percentages from the lines ``run_alphafold.py`` prints."""

from __future__ import annotations

import pytest

from cyclotron.alphafold.progress import AlphaFoldProgress
from cyclotron.domain.ports import ProgressReport

SEQ = "GMRESYANENQFGFKTINSDIHKIVIVGGYGKLGG"

# A published run log of run_alphafold.py (one seed, two chains), sequences shortened.
RUN_LOG = f"""\
I0403 15:32:51.938552 140574038458496 xla_bridge.py:897] Unable to initialize backend 'tpu'

Running AlphaFold 3. Please note that standard AlphaFold 3 model parameters are
only available under terms of use provided at
Found local devices: [RocmDevice(id=0), RocmDevice(id=1)], using device 0: rocm:0
Building model from scratch...
Checking that model parameters can be loaded...

Running fold job 2PV7...
Output will be written in /root/af_output/2pv7
Running data pipeline...
Running data pipeline for chain A...
I0403 15:33:05.314379 140574038458496 pipeline.py:82] Getting protein MSAs for sequence {SEQ}
I0403 15:34:09.994639 1401 subprocess_utils.py:97] Finished Jackhmmer (bfd.fa) in 64.674 seconds
Running data pipeline for chain A took 535.51 seconds
Running data pipeline for chain B...
Running data pipeline for chain B took 0.05 seconds
Writing model input JSON to /root/af_output/2pv7/2pv7_data.json
Predicting 3D structure for 2PV7 with 1 seed(s)...
Featurising data with 1 seed(s)...
Featurising data with seed 1.
I0403 15:42:05.252220 140574038458496 pipeline.py:265] Got bucket size 768 for input with 596 tokens
Featurising data with seed 1 took 7.07 seconds.
Featurising data with 1 seed(s) took 11.39 seconds.
Running model inference and extracting output structure samples with 1 seed(s)...
Running model inference with seed 1...
Running model inference with seed 1 took 129.31 seconds.
Extracting inference results with seed 1...
Extracting 5 inference samples with seed 1 took 0.45 seconds.
Running model inference and extracting output structures with 1 seed(s) took 129.76 seconds.
Writing outputs with 1 seed(s)...
Fold job 2PV7 done, output written to /root/af_output/2pv7

Done running 1 fold jobs.
"""


def feed(lines: list[str]) -> list[ProgressReport]:
    parser = AlphaFoldProgress()
    return [r for r in map(parser, lines) if r is not None]


def test_real_log_climbs_through_the_stages_to_100() -> None:
    reports = feed(RUN_LOG.splitlines())
    percents = [r.done for r in reports]
    assert percents == sorted(percents)
    assert reports[-1].done == 100.0 and all(r.total == 100.0 for r in reports)
    stages = list(dict.fromkeys(r.stage for r in reports))
    assert stages == [
        "startup",
        "weight_loading",
        "data_pipeline",
        "feature_preparation",
        "recycling",
        "diffusion",
        "confidence",
        "ranking",
        "output_writing",
        "done",
    ]


@pytest.mark.parametrize(
    ("line", "stage"),
    [
        ("Building model from scratch...", "weight_loading"),
        ("Running data pipeline...", "data_pipeline"),
        ("Skipping data pipeline...", "data_pipeline"),
        ("Featurising data with seed 7.", "feature_preparation"),
        ("Running model inference with seed 7...", "recycling"),
        ("Extracting inference results with seed 7...", "confidence"),
        ("Writing outputs with 1 seed(s)...", "output_writing"),
    ],
)
def test_each_line_names_its_stage(line: str, stage: str) -> None:
    report = AlphaFoldProgress()(line)
    assert report is not None and report.stage == stage


def test_unrelated_lines_report_nothing() -> None:
    parser = AlphaFoldProgress()
    assert parser("Output will be written in /root/af_output/2pv7") is None
    assert (
        parser(f"I0403 15:33:05.3 1 pipeline.py:82] Getting protein MSAs for sequence {SEQ}")
        is None
    )


def test_counters_move_within_recycling_and_diffusion() -> None:
    parser = AlphaFoldProgress()
    start = parser("Running model inference with seed 1...")
    mid = parser("recycle 5/10")
    late = parser("Diffusion step 150 of 200")
    end = parser("Running model inference with seed 1 took 129.31 seconds.")
    assert start is not None and mid is not None and late is not None and end is not None
    assert (mid.stage, late.stage) == ("recycling", "diffusion")
    assert start.done < mid.done < late.done < end.done
    assert mid.done == pytest.approx(57.5)  # half of the 50-65 recycling band
    assert late.done == pytest.approx(80.0)  # three quarters of the 65-85 diffusion band
    assert (parser.recycling_iteration, parser.recycling_total) == (5, 10)
    assert (parser.diffusion_step, parser.diffusion_total) == (150, 200)


def test_several_seeds_share_the_model_band_and_never_go_back() -> None:
    lines = [
        "Featurising data with 2 seed(s)...",
        "Featurising data with seed 1.",
        "Featurising data with seed 1 took 7.07 seconds.",
        "Featurising data with seed 2.",
        "Featurising data with seed 2 took 7.01 seconds.",
        "Running model inference with seed 1...",
        "Running model inference with seed 1 took 129.31 seconds.",
        "Extracting 5 inference samples with seed 1 took 0.45 seconds.",
        "Running model inference with seed 2...",
        "Running model inference with seed 2 took 128.00 seconds.",
        "Extracting 5 inference samples with seed 2 took 0.45 seconds.",
        "Done running 1 fold jobs.",
    ]
    percents = [r.done for r in feed(lines)]
    assert percents == sorted(percents)
    assert percents[4] == pytest.approx(50.0)  # both seeds featurised
    assert percents[5] == pytest.approx(50.0)  # seed 1 of 2 starts the 50-90 model band
    # Seed 1 ends, and seed 2 starts, halfway through the model band.
    assert percents[6] < percents[7] == percents[8] == pytest.approx(70.0)
    assert percents[8] < percents[9] < percents[10] < percents[11]
    assert percents[-1] == 100.0
