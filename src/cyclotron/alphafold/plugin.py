"""The ``alphafold3`` plug-in: each model seed of an AlphaFold 3 job is a task that runs the
site's AlphaFold 3 command (``run_alphafold.py`` or a wrapper) on that seed alone.

The model weights are licensed, so Cyclotron drives a configured command, as it drives other
licensed engines. Options of ``[services.<name>]``:

- ``command``: the command, a string (split like a shell would) or a list; default
  ``run_alphafold.py``. Each task runs it in its directory with ``--json_path=task_input.json
  --output_dir=output --num_diffusion_samples=<n> --run_data_pipeline=<true|false>``, then
  ``--model_dir`` and ``--db_dir`` when set, then ``args``. The diffusion steps and precision
  a job asks for are in ``CYCLOTRON_AF3_DIFFUSION_STEPS`` and ``CYCLOTRON_AF3_PRECISION`` for
  wrappers that pass them on (``run_alphafold.py`` has no flag for them).
- ``model_dir``, ``db_dir``, ``args``; ``json_version`` (2) of the input written.
- ``num_samples`` (5) and ``diffusion_steps`` (200): defaults of jobs that do not say.
- ``rcsb_url`` (``https://files.rcsb.org``) and ``fetch_timeout`` (30 s) of structure fetches.
- ``cache_dir``: the data-pipeline cache (default ``<data_dir>/alphafold3-cache``).

The job's input holds ``fold_input.json`` (the job in the ``alphafold3`` dialect, every seed)
and ``af3_job.json`` (its settings and cache key); the body as submitted is kept beside it.
A task whose input's data-pipeline output is cached, in a job that allows it, runs on that
output with the pipeline off; a task that ran the pipeline stores its output for later tasks
and jobs. The merge ranks the samples of every seed together (``results.py``) and writes the
run's layout into ``results/``: the sample folders, one ``ranking_scores.csv`` and the best
sample's files at the top.
"""

from __future__ import annotations

import csv
import json
import os
import shlex
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from cyclotron.alphafold.accelerator import Accelerator, configured_or_detected
from cyclotron.alphafold.cache_key import input_key
from cyclotron.alphafold.convert import ALPHAFOLD3_JSON_VERSION, to_alphafold3_json
from cyclotron.alphafold.estimate import estimate
from cyclotron.alphafold.inputs import AlphaFoldInput, parse_input
from cyclotron.alphafold.inputs import validate as validate_input
from cyclotron.alphafold.pipeline_cache import PipelineCache
from cyclotron.alphafold.progress import AlphaFoldProgress
from cyclotron.alphafold.results import ConfidenceResult, merge_seeds, read_task_samples
from cyclotron.domain.ports import (
    CachedInput,
    DocumentPlan,
    ProgressParser,
    SimulatorPlugin,
    TaskCommand,
)
from cyclotron.errors import InputError, PluginError, Problem

FOLD_INPUT = "fold_input.json"
JOB_SETTINGS = "af3_job.json"
TASK_INPUT = "task_input.json"
REQUEST_DOCUMENT = "af3_request.json"  # the body as submitted, kept beside the input
OUTPUT_DIR = "output"
DEFAULT_COMMAND = "run_alphafold.py"
DEFAULT_RCSB_URL = "https://files.rcsb.org"
# What the data pipeline adds to a polymer entity of the input.
_PIPELINE_FIELDS = ("unpairedMsa", "pairedMsa", "templates")


@dataclass(frozen=True)
class JobSettings:
    """What ``af3_job.json`` holds: how the job's tasks run."""

    key: str
    seeds: tuple[int, ...]
    num_samples: int
    diffusion_steps: int
    precision: str | None
    run_data_pipeline: bool
    use_cache: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "seeds": list(self.seeds),
            "num_samples": self.num_samples,
            "diffusion_steps": self.diffusion_steps,
            "precision": self.precision,
            "run_data_pipeline": self.run_data_pipeline,
            "use_cache": self.use_cache,
        }

    @classmethod
    def read(cls, folder: Path) -> JobSettings:
        data = _load(folder / JOB_SETTINGS)
        try:
            return cls(
                key=str(data["key"]),
                seeds=tuple(int(s) for s in data["seeds"]),
                num_samples=int(data["num_samples"]),
                diffusion_steps=int(data["diffusion_steps"]),
                precision=data.get("precision"),
                run_data_pipeline=bool(data["run_data_pipeline"]),
                use_cache=bool(data["use_cache"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PluginError(f"{JOB_SETTINGS} is incomplete: {exc}") from exc


@dataclass(frozen=True)
class PreparedJob:
    """A checked AlphaFold 3 body, ready to be stored as a job's input."""

    model: AlphaFoldInput
    settings: JobSettings
    files: dict[str, bytes]


class AlphaFold3Plugin(SimulatorPlugin):
    name: ClassVar[str] = "alphafold3"
    description: ClassVar[str] = "AlphaFold 3 structure prediction, one task per model seed"
    input_kinds: ClassVar[tuple[str, ...]] = ("af3",)
    result_kind: ClassVar[str] = "confidence"
    caches_inputs: ClassVar[bool] = True
    archives_results_only: ClassVar[bool] = True  # as the AlphaFold 3 app's downloads

    def __init__(self, options: Mapping[str, Any]) -> None:
        super().__init__(options)
        command = self.options.get("command", DEFAULT_COMMAND)
        self.command: tuple[str, ...] = tuple(
            shlex.split(command) if isinstance(command, str) else (str(c) for c in command)
        )
        if not self.command:
            raise ValueError("command is empty")
        self.args = tuple(str(a) for a in self.options.get("args", ()))
        self.json_version = int(self.options.get("json_version", ALPHAFOLD3_JSON_VERSION))
        self.num_samples = int(self.options.get("num_samples", 5))
        self.diffusion_steps = int(self.options.get("diffusion_steps", 200))
        self.rcsb_url = str(self.options.get("rcsb_url") or DEFAULT_RCSB_URL)
        self.fetch_timeout = float(self.options.get("fetch_timeout", 30.0))
        cache_dir = self.options.get("cache_dir")
        self.cache: PipelineCache | None = PipelineCache(Path(cache_dir)) if cache_dir else None

    @property
    def run_data_pipeline(self) -> bool:
        """Whether a job that leaves ``runDataPipeline`` out runs the data pipeline: as
        configured, else where the service has its databases (``db_dir`` exists)."""
        configured = self.options.get("run_data_pipeline")
        if configured is not None:
            return bool(configured)
        db_dir = self.options.get("db_dir")
        return bool(db_dir) and Path(str(db_dir)).is_dir()

    def accelerator(self) -> Accelerator:
        """The accelerator the service runs on (its settings, else this machine)."""
        return configured_or_detected(self.options)

    def attach(self, data_dir: Path) -> None:
        if self.cache is None:
            self.cache = PipelineCache(data_dir / "alphafold3-cache")

    # Submission ----------------------------------------------------------------------------

    def prepare(self, body: Mapping[str, Any], service: str) -> PreparedJob:
        """Check a body (``InputError`` listing every problem) and build the job's input."""
        model = parse_input(body)
        flags = {}
        defaults = {"runDataPipeline": self.run_data_pipeline, "useCache": True}
        for key, default in defaults.items():
            value = body.get(key, default)
            if not isinstance(value, bool):
                raise InputError(f"{key}: must be true or false")
            flags[key] = value
        settings = JobSettings(
            key=input_key(body, service=service, plugin_version=self.version or ""),
            seeds=model.seeds,
            num_samples=model.num_samples or self.num_samples,
            diffusion_steps=model.diffusion_steps or self.diffusion_steps,
            precision=model.precision,
            run_data_pipeline=flags["runDataPipeline"],
            use_cache=flags["useCache"],
        )
        fold_input = to_alphafold3_json(model, self.json_version)
        files = {
            FOLD_INPUT: json.dumps(fold_input, indent=1).encode(),
            JOB_SETTINGS: json.dumps(settings.as_json(), indent=1).encode(),
        }
        return PreparedJob(model, settings, files)

    def plan_document(self, document: Mapping[str, Any], service: str) -> DocumentPlan:
        """Every problem of the body located in it, then one task per model seed."""
        found = validate_input(document)
        errors = [Problem((p.location,), p.message) for p in found if not p.warning]
        if errors:
            raise InputError.of(errors)
        prepared = self.prepare(document, service)
        settings = prepared.settings
        sizes = estimate(prepared.model)
        attrs: dict[str, Any] = {
            "input_kind": "af3",
            "af3": {
                "num_samples": settings.num_samples,
                "diffusion_steps": settings.diffusion_steps,
                "precision": settings.precision,
                "run_data_pipeline": settings.run_data_pipeline,
                "use_cache": settings.use_cache,
            },
            "num_residues": sizes["num_residues"],
            "num_chains": sizes["num_chains"],
        }
        if settings.use_cache and self.cached_pipeline(settings.key) is not None:
            attrs["reused"] = {"kind": "data_pipeline", "job_id": None, "key": settings.key}
        return DocumentPlan(
            files=prepared.files,
            seeds=tuple(settings.seeds),
            key=settings.key,
            attrs=attrs,
            documents={REQUEST_DOCUMENT: json.dumps(dict(document)).encode()},
            warnings=tuple(str(p) for p in found if p.warning),
            estimates=dict(sizes),
        )

    def cached_input(self, key: str) -> CachedInput | None:
        entry = self.cache.entry(key) if self.cache is not None else None
        return CachedInput(entry.size, entry.stored_at) if entry is not None else None

    def cached_pipeline(self, key: str) -> Path | None:
        """The cached data-pipeline output for ``key``, if this service holds one."""
        return self.cache.lookup(key) if self.cache is not None else None

    def validate(self, input_dir: Path) -> None:
        JobSettings.read(input_dir)
        fold_input = _load(input_dir / FOLD_INPUT)
        if not isinstance(fold_input, dict) or not fold_input.get("sequences"):
            raise PluginError(f"{FOLD_INPUT} has no sequences")

    def sandbox_paths(self) -> tuple[str, ...]:
        """The weights and databases the command reads (``model_dir``, ``db_dir``)."""
        return tuple(str(self.options[o]) for o in ("model_dir", "db_dir") if self.options.get(o))

    def unavailable_reason(self) -> str | None:
        program = self.command[0]
        if shutil.which(program) is None:
            return f"command {program!r} not found"
        return None

    # Tasks ---------------------------------------------------------------------------------

    def task_command(
        self, workdir: Path, task_index: int, ntasks: int, *, seed: int
    ) -> TaskCommand:
        settings = JobSettings.read(workdir)
        fold_input = _load(workdir / FOLD_INPUT)
        run_pipeline = settings.run_data_pipeline
        cached = self.cached_pipeline(settings.key) if settings.use_cache else None
        if cached is not None:
            fold_input = _with_pipeline_output(fold_input, _load(cached))
            run_pipeline = False
        fold_input["modelSeeds"] = [seed]  # the job's seeds are its modelSeeds, one per task
        (workdir / TASK_INPUT).write_text(json.dumps(fold_input, indent=1))
        argv = [
            *self.command,
            f"--json_path={TASK_INPUT}",
            f"--output_dir={OUTPUT_DIR}",
            f"--num_diffusion_samples={settings.num_samples}",
            f"--run_data_pipeline={'true' if run_pipeline else 'false'}",
        ]
        for option in ("model_dir", "db_dir"):
            if self.options.get(option):
                argv.append(f"--{option}={self.options[option]}")
        env = {"CYCLOTRON_AF3_DIFFUSION_STEPS": str(settings.diffusion_steps)}
        if settings.precision:
            env["CYCLOTRON_AF3_PRECISION"] = settings.precision
        return TaskCommand(argv=(*argv, *self.args), env=env)

    def progress_parser(self) -> ProgressParser:
        return AlphaFoldProgress()

    def collect_task(self, workdir: Path) -> None:
        folder = task_output(workdir)
        read_task_samples(folder)  # refuses a run that left no usable sample
        if self.cache is None:
            return
        settings = JobSettings.read(workdir)
        if not settings.run_data_pipeline:  # its data JSON is the input, without MSAs
            return
        data = next(folder.glob("*_data.json"), None)
        if data is not None and self.cache.lookup(settings.key) is None:
            self.cache.store(settings.key, data)

    # Results -------------------------------------------------------------------------------

    def ranking(self, job_dir: Path, completed: list[int]) -> ConfidenceResult:
        """The samples of the completed tasks (seeds), ranked together."""
        return merge_seeds(
            read_task_samples(task_output(job_dir / "tasks" / str(i))) for i in sorted(completed)
        )

    def merge(self, job_dir: Path, completed: list[int]) -> None:
        result = self.ranking(job_dir, completed)
        target = job_dir / "results"
        target.mkdir(exist_ok=True)
        first = task_output(job_dir / "tasks" / str(min(completed)))
        name = first.name
        for ranked in result.samples:
            sample_dir = ranked.sample.summary_path.parent
            _copy_tree(sample_dir, target / sample_dir.name)
        with (target / "ranking_scores.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(("seed", "sample", "ranking_score"))
            for ranked in result.samples:
                writer.writerow(
                    (ranked.sample.seed, ranked.sample.sample, ranked.sample.ranking_score)
                )
        best = result.best.sample
        for suffix, source in (
            ("model.cif", best.structure_path),
            ("confidences.json", best.confidences_path),
            ("summary_confidences.json", best.summary_path),
        ):
            if source is not None:
                _link_or_copy(source, target / f"{name}_{suffix}")
        for extra in (*first.glob("*_data.json"), *first.glob("TERMS_OF_USE.md")):
            _link_or_copy(extra, target / extra.name)

    def result_dir(self, job_dir: Path, ntasks: int) -> Path:
        return job_dir / "results"


def task_output(workdir: Path) -> Path:
    """The folder ``run_alphafold.py`` wrote in a task's ``output/`` (one per job name)."""
    root = workdir / OUTPUT_DIR
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(folders) != 1:
        raise PluginError(
            f"expected one output folder in {OUTPUT_DIR}/ of task {workdir.name}, "
            f"found {len(folders)}"
        )
    return folders[0]


def _with_pipeline_output(fold_input: dict[str, Any], cached: Any) -> dict[str, Any]:
    """The job's input with the MSAs and templates of a cached ``*_data.json`` for the same
    molecules (matched by type and sequence, since chain order and ids may differ)."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for entry in cached.get("sequences", []) if isinstance(cached, dict) else []:
        for kind, body in entry.items():
            if kind != "ligand" and isinstance(body, dict):
                found.setdefault((kind, str(body.get("sequence"))), []).append(body)
    sequences = []
    for entry in fold_input["sequences"]:
        merged = {}
        for kind, body in entry.items():
            source = found.get((kind, str(body.get("sequence"))))
            if source:  # what the job states itself (its own MSA) wins
                body = {**{k: v for k, v in source[0].items() if k in _PIPELINE_FIELDS}, **body}
            merged[kind] = body
        sequences.append(merged)
    return {**fold_input, "sequences": sequences}


def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise PluginError(f"cannot read {path.name}: {exc}") from exc


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _copy_tree(source: Path, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, copy_function=_link_or_copy_fn)


def _link_or_copy_fn(source: str, target: str) -> None:
    _link_or_copy(Path(source), Path(target))
