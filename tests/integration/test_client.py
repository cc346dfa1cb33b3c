"""``cyclotron.client`` against a live server: submit, follow, inspect, cancel, delete.

One server (authentication on) serves the module: ``example`` runs scripts, ``sim`` is the
SHIELD-HIT12A test double that converts ex1 and writes its real estimators, ``alphafold3``
the AlphaFold 3 test double. A ``TcpProxy`` in front of it loses answers and cuts streams,
as a network does, to check that the client's retries make one job and miss no event.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.alphafold import af3_body, double_service, require_af3_fixtures
from support.live import LiveServer, serving
from support.tcp_proxy import TcpProxy
from support.yaptide import FIXTURES, FIXTURES_ABSENT

from cyclotron.client import (
    AsyncClient,
    BadRequest,
    Client,
    InvalidRequest,
    NotFound,
    ProgressEvent,
    Unauthorized,
)

TESTS_DIR = Path(__file__).resolve().parents[1]
KEY, OTHER_KEY = "client-test-key", "client-other-key"
CONFIG: dict[str, Any] = {
    "dispatch": {"interval": 0.2},
    "executors": {"local": {"max_parallel": 4}},
    "auth": {
        "enabled": True,
        "keys": [
            {"sha256": hashlib.sha256(k.encode()).hexdigest(), "user_id": user, "admin": False}
            for user, k in ((1, KEY), (2, OTHER_KEY))
        ],
    },
    "services": {
        "example": {"plugin": "script"},
        "sim": {"plugin": "support.shieldhit_double:ShieldhitTestDouble", "seconds": 0.5},
        "alphafold3": double_service(),
    },
}
ENV = {"PYTHONPATH": str(TESTS_DIR), "AF3_DOUBLE_SECONDS": "1"}
DEADLINE = 180.0  # generous: a loaded two-core machine
# A task that reports a quarter done, then waits for the test to let it finish.
GATED = "echo CYCLOTRON_PROGRESS 1/4\nwhile [ ! -e go ]; do sleep 0.2; done\necho ok > out.txt\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with serving("sqlite", tmp_path_factory.mktemp("client"), CONFIG, ENV) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[Client]:
    with Client(server.base_url, api_key=KEY) as c:
        yield c


def let_go(server: LiveServer, job: str, task: int = 0) -> None:
    (server.data_dir / "jobs" / job / "tasks" / str(task) / "go").touch()


def test_files_job_from_submission_to_zip(client: Client, tmp_path: Path) -> None:
    (tmp_path / "run.sh").write_text("echo CYCLOTRON_PROGRESS 1/1\ncat data.bin > copy.bin\n")
    (tmp_path / "data.bin").write_bytes(bytes(range(256)))
    job = client.submit_files([tmp_path / "run.sh", tmp_path / "data.bin"], name="copy", ntasks=2)
    assert job.status == "pending" and len(job.id) == 32

    events: list[ProgressEvent] = []
    done = client.wait(job.id, events.append, timeout=DEADLINE)
    assert done.status == "completed" and done.percent == 100.0
    assert [t.state for t in done.tasks] == ["completed", "completed"]
    assert events[0].type == "snapshot" and events[-1].type == "completed"
    seqs = [e.seq for e in events[1:]]
    assert seqs == sorted(set(seqs)), "events repeated or out of order"

    listed = client.jobs(status="completed", search="COPY")
    assert [j.id for j in listed.jobs] == [job.id] and listed.total == 1
    assert client.job(job.number).id == job.id
    paths = {f.path: f for f in client.files(job.id)}
    assert paths["tasks/1/copy.bin"].size == 256 and paths["tasks/1/copy.bin"].sha256
    assert client.file(job.id, "tasks/0/copy.bin") == bytes(range(256))
    logs = client.logs(job.id, task=1)
    assert [entry.index for entry in logs] == [1] and "CYCLOTRON_PROGRESS" in logs[0].stdout
    archive = client.download_results(job.id, tmp_path / "r.zip")
    with zipfile.ZipFile(archive) as opened:
        assert opened.read("tasks/1/copy.bin") == bytes(range(256))
    assert client.results(job.id).kind == "files"

    client.delete(job.id)
    with pytest.raises(NotFound):
        client.job(job.id)


def test_editor_project_results_as_numpy_arrays(client: Client) -> None:
    if not FIXTURES.is_dir():
        pytest.skip(FIXTURES_ABSENT)
    job = client.submit_editor(
        FIXTURES / "ex1.json", service="sim", ntasks=2, primaries=2000, name="ex1"
    )
    assert client.wait(job.id, timeout=DEADLINE).status == "completed"
    results = client.results(job.id)
    assert results.kind == "estimators" and not results.partial
    dose = results["z_profile"].page(0)
    assert dose.name == "DOSE" and dose.axes[0].label == "Position (Z) [cm]"
    assert dose.values.shape == (dose.axes[0].values.size,) and dose.values.dtype == np.float64
    assert dose.error is not None and dose.error.shape == dose.values.shape
    assert np.nanmax(dose.values) > 0
    assert results["z_profile"].primaries == 2000
    mesh = results["yz_profile"].page(0)  # 2-D: Y fastest in the file, (ny, nz) here
    ny, nz = (axis.values.size for axis in mesh.axes)
    assert mesh.values.shape == (ny, nz)
    flat = client.results(job.id, estimator="yz_profile", pages="0").raw["estimators"][0]
    values = flat["pages"][0]["data"]["values"]
    assert mesh.values[1, 0] == pytest.approx(values[1], nan_ok=True)
    assert mesh.values[0, 1] == pytest.approx(values[ny], nan_ok=True)


def test_alphafold_submission_confidence_and_structure(client: Client, tmp_path: Path) -> None:
    require_af3_fixtures()
    job = client.submit_alphafold(af3_body([3]))
    detail = client.wait(job.id, timeout=DEADLINE)
    assert detail.status == "completed" and detail.service == "alphafold3"
    results = client.results(job.id)
    assert results.kind == "confidence"
    best = results.raw["best_sample_index"]
    sample = client.confidence(job.id, best)
    residues = detail.raw["num_residues"]
    assert sample.rank == 1 and sample.plddt.shape == (residues,)
    assert sample.pae.shape == (residues, residues)
    assert "\ndata_" in client.structure(job.id, 1)  # mmCIF


def test_validation_and_refusals(client: Client, server: LiveServer) -> None:
    checked = client.validate({"service": "example", "input": {"kind": "files", "files": {}}})
    assert not checked.valid and checked.errors
    with pytest.raises(InvalidRequest) as refused:
        client.submit_files({"run.sh": "true\n"}, ntasks=0)
    assert refused.value.problems[0].location == ("body", "ntasks")
    with pytest.raises(NotFound):
        client.job("f" * 32)
    with Client(server.base_url, api_key="not-a-key") as stranger, pytest.raises(Unauthorized):
        stranger.jobs()
    with Client(server.base_url, api_key=OTHER_KEY) as other:
        mine = client.submit_files({"run.sh": "true\n"}, name="not theirs")
        assert mine.id not in [j.id for j in other.jobs().jobs]
        with pytest.raises(NotFound):
            other.cancel(mine.id)


def test_cancel_then_delete(client: Client, server: LiveServer) -> None:
    job = client.submit_files({"run.sh": GATED}, name="to cancel")
    deadline = time.monotonic() + DEADLINE
    while client.job(job.id).status != "running":
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.2)
    assert client.cancel(job.id) in ("cancelled", "cancelling")
    assert client.wait(job.id, timeout=DEADLINE).status == "cancelled"
    with pytest.raises(BadRequest):
        client.cancel(job.id)
    client.delete(job.id)
    with pytest.raises(NotFound):
        client.job(job.id)


def test_a_lost_answer_is_sent_again_and_makes_one_job(server: LiveServer) -> None:
    with (
        TcpProxy("127.0.0.1", server.port) as proxy,
        Client(f"http://127.0.0.1:{proxy.port}", api_key=KEY) as client,
    ):
        proxy.drop_reply_once(b"POST /api/jobs")
        job = client.submit_files({"run.sh": "true\n"}, name="sent twice")
        assert proxy.dropped.is_set()
        assert [j.id for j in client.jobs(search="sent twice").jobs] == [job.id]


def test_wait_resumes_a_cut_stream_where_it_left_off(server: LiveServer) -> None:
    with (
        TcpProxy("127.0.0.1", server.port) as proxy,
        Client(f"http://127.0.0.1:{proxy.port}", api_key=KEY) as client,
    ):
        job = client.submit_files({"run.sh": GATED}, name="cut stream")
        events: list[ProgressEvent] = []
        quarter = threading.Event()

        def seen(event: ProgressEvent) -> None:
            events.append(event)
            if (event.percent or 0) >= 25:
                quarter.set()

        waited: dict[str, Any] = {}
        waiter = threading.Thread(
            target=lambda: waited.update(job=client.wait(job.id, seen, timeout=DEADLINE))
        )
        waiter.start()
        assert quarter.wait(DEADLINE)
        proxy.cut()  # the stream breaks mid-job
        let_go(server, job.id)
        proxy.restore()
        waiter.join(DEADLINE)
    assert waited["job"].status == "completed"
    assert events[-1].type == "completed"
    after_snapshot = [e.seq for e in events if e.type != "snapshot"]
    assert after_snapshot == sorted(set(after_snapshot)), "an event came twice or out of order"


def test_async_client_follows_a_job(server: LiveServer) -> None:
    async def scenario() -> tuple[str, list[str], bytes]:
        async with AsyncClient(server.base_url, api_key=KEY) as client:
            job = await client.submit_files({"run.sh": "echo hi > hi.txt\n"}, name="async")
            kinds: list[str] = []
            done = await client.wait(job.id, lambda e: kinds.append(e.type), timeout=DEADLINE)
            listed = await client.jobs(search="async")
            assert [j.id for j in listed.jobs] == [job.id]
            content = await client.file(job.id, "tasks/0/hi.txt")
            await client.delete(job.id)
            return done.status, kinds, content

    status, kinds, content = asyncio.run(scenario())
    assert status == "completed" and kinds[0] == "snapshot" and kinds[-1] == "completed"
    assert content == b"hi\n"
