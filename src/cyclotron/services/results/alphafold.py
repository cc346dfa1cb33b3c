"""The AlphaFold 3 service of a server: the one ``[api] alphafold3_service`` names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from cyclotron.alphafold.accelerator import detected
from cyclotron.alphafold.plugin import REQUEST_DOCUMENT, AlphaFold3Plugin
from cyclotron.alphafold.results import ConfidenceResult, sample_confidence
from cyclotron.domain.records import Caller, JobRecord
from cyclotron.domain.states import TaskState
from cyclotron.errors import InputError, NotFound
from cyclotron.services.catalog import ConfiguredService
from cyclotron.services.core import Core
from cyclotron.services.jobs.queries import JobRef, get_job
from cyclotron.services.results.reads import completed_job


def alphafold_service(core: Core) -> ConfiguredService:
    """The configured AlphaFold 3 service; NotFound (404) when there is none."""
    name = core.settings.api.alphafold3_service
    try:
        service = core.catalog.get(name)
    except InputError:
        raise NotFound("No AlphaFold 3 service is configured") from None
    if not isinstance(service.plugin, AlphaFold3Plugin):
        raise NotFound(f"Service {name!r} is not an AlphaFold 3 service")
    return service


def alphafold_plugin(core: Core) -> AlphaFold3Plugin:
    return cast(AlphaFold3Plugin, alphafold_service(core).plugin)


def alphafold_status(core: Core) -> dict[str, Any]:
    """What the AlphaFold 3 app's status adds (spec/native.md §10): the data pipeline's
    default for a submission, and the accelerator; the host's when no service is set up."""
    try:
        plugin = alphafold_plugin(core)
    except NotFound:
        return {"run_data_pipeline": False, **detected().as_status()}
    return {
        "run_data_pipeline": plugin.run_data_pipeline,
        **plugin.accelerator().as_status(),
    }


def alphafold_detail(core: Core, job: JobRecord) -> dict[str, Any] | None:
    """What JobDetail adds for an AlphaFold 3 job: the body as submitted and its settings."""
    settings = job.attrs.get("af3")
    if not isinstance(settings, dict):
        return None
    try:
        body = json.loads(core.files.document_path(job.id, REQUEST_DOCUMENT).read_bytes())
    except (OSError, ValueError):
        body = None  # files removed by retention
    return {"input_json": body, **settings}


@dataclass(frozen=True)
class JobRanking:
    """A completed AlphaFold 3 job's samples ranked across its seeds."""

    job: JobRecord
    plugin: AlphaFold3Plugin
    result: ConfidenceResult

    @property
    def output_name(self) -> str:
        """The name ``run_alphafold.py`` gave the job's files (its sanitised name)."""
        return self.result.best.sample.summary_path.parents[1].name


def job_ranking(core: Core, caller: Caller, ref: JobRef) -> JobRanking:
    """NotFound for another service's job, ConflictError (400) before completion, FilesRemoved
    (410) after retention, PluginError (500) when the outputs cannot be read."""
    job = get_job(core, caller, ref, with_tasks=False)
    plugin = core.catalog.get(job.service).plugin
    if not isinstance(plugin, AlphaFold3Plugin):
        raise NotFound(f"Job {job.id} is not an AlphaFold 3 job")
    job = completed_job(core, caller, ref)
    completed = [t.index for t in job.tasks if t.state == TaskState.COMPLETED]
    return JobRanking(job, plugin, plugin.ranking(core.files.job_dir(job.id), completed))


def sample_confidence_wire(ranking: JobRanking, sample_index: int) -> dict[str, Any]:
    """SampleConfidence (spec/native.md §8): pLDDT per residue and per atom, PAE per token
    pair."""
    ranked = ranking.result.by_index(sample_index)
    found = sample_confidence(ranked.sample)
    return {
        "sample_index": ranked.sample_index,
        "seed": ranked.sample.seed,
        "rank": ranked.rank,
        "ptm": ranked.sample.ptm,
        "iptm": ranked.sample.iptm,
        "mean_plddt": round(found.mean_plddt, 2),
        "plddt": [round(v, 2) for v in found.plddts],
        "atom_plddts": list(found.atom_plddts),
        "pae": [list(row) for row in found.pae],
        "num_atoms": found.num_atoms,
        "num_residues": found.num_residues,
        "restraint_satisfaction": None,
    }
