"""spec/native.md §11 under load: 200 WebSocket subscribers of one job each receive every event,
in order, and the terminal message, against a live server on SQLite and PostgreSQL.

The job is a 3-task ``run.sh`` of the ``example`` service whose tasks wait for a gate file in
their working directories (the only place a sandboxed task shares with the host) before
printing 50 ``CYCLOTRON_PROGRESS`` lines 20-50 ms apart. The clients connect while the tasks
wait (so no event falls while they connect); the test then opens the gates. Each client's
messages after its snapshot must be the stored log after the snapshot's ``seq``, without a
gap, as SSE replays it from the start (``stage`` and ``percent`` included: as they were when
each event happened); every client must see the same messages."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from native_support import TERMINAL, create, poll, script_body
from support.live import LiveServer
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

SUBSCRIBERS = 200
TASKS = 3
LINES = 50
CONFIG = {
    "services": {"example": {"plugin": "script", "max_runs": 10, "runs_per_user": 10}},
    # The tasks mostly sleep: all of them run at once, whatever the number of CPUs.
    "executors": {"local": {"max_parallel": TASKS}},
}
# Generous: 200 clients and a server share a loaded two-core machine.
CONNECT_TIMEOUT = 60.0
STREAM_TIMEOUT = 90.0


def gated_script() -> str:
    """Wait for ``gate`` in the working directory, then print LINES progress lines 20 to 50 ms
    apart."""
    return (
        "while [ ! -e gate ]; do sleep 0.05; done\n"
        f"for i in $(seq 1 {LINES}); do\n"
        f'  echo "CYCLOTRON_PROGRESS $i/{LINES}"\n'
        "  sleep 0.0$((2 + RANDOM % 4))\n"
        "done\n"
    )


class Subscriber:
    """One WebSocket client: its messages, in the order received, and its close code."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.code: int | None = None
        self.snapshot = asyncio.Event()

    async def follow(self, socket: ClientConnection) -> None:
        try:
            async for raw in socket:
                message = json.loads(raw)
                if message["type"] != "ping":
                    self.messages.append(message)
                if message["type"] == "snapshot":
                    self.snapshot.set()
        except ConnectionClosed:
            pass
        self.code = socket.close_code


async def subscribe_all(url: str, gates: list[Path]) -> list[Subscriber]:
    """SUBSCRIBERS clients; the gate opens once every one has its snapshot."""
    subscribers = [Subscriber() for _ in range(SUBSCRIBERS)]
    sockets = await asyncio.wait_for(
        asyncio.gather(*(connect(url, open_timeout=CONNECT_TIMEOUT) for _ in subscribers)),
        CONNECT_TIMEOUT,
    )
    try:
        followers = [
            asyncio.create_task(s.follow(socket))
            for s, socket in zip(subscribers, sockets, strict=True)
        ]
        await asyncio.wait_for(
            asyncio.gather(*(s.snapshot.wait() for s in subscribers)), CONNECT_TIMEOUT
        )
        for gate in gates:
            gate.touch()
        await asyncio.wait_for(asyncio.gather(*followers), STREAM_TIMEOUT)
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets))
    return subscribers


def stored_log(client: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    """Every stored event, replayed over SSE from the start."""
    records = []
    with client.stream(
        "GET", f"/api/jobs/{job_id}/events", params={"last_event_id": 0}
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                records.append(json.loads(line.removeprefix("data:")))
    return records


def test_200_subscribers_each_receive_every_event_in_order(
    server: LiveServer, client: httpx.Client
) -> None:
    job_id = create(client, script_body(gated_script(), ntasks=TASKS))
    poll(client, job_id, lambda d: all(t["state"] == "running" for t in d["tasks"]))
    url = f"ws://127.0.0.1:{server.port}/api/jobs/{job_id}/progress"
    tasks = server.data_dir / "jobs" / job_id / "tasks"
    subscribers = asyncio.run(subscribe_all(url, [tasks / str(i) / "gate" for i in range(TASKS)]))
    assert poll(client, job_id)["status"] == "completed"
    log = stored_log(client, job_id)
    seqs = [m["seq"] for m in log]
    assert seqs == list(range(1, len(log) + 1))  # the log has no gaps
    first_progress = next(m["seq"] for m in log if m["type"] == "progress")
    assert sum(m["type"] == "progress" for m in log) >= TASKS
    streams = []
    for subscriber in subscribers:
        snapshot, *events = subscriber.messages
        assert subscriber.code == 1000, subscriber.messages[-3:]
        assert snapshot["type"] == "snapshot" and snapshot["seq"] < first_progress
        assert events[-1]["type"] == "completed" and events[-1]["percent"] == 100.0
        assert [m["type"] for m in events].count("completed") == 1
        assert events == [m for m in log if m["seq"] > snapshot["seq"]]
        streams.append([m for m in events if m["seq"] >= first_progress])
    assert all(stream == streams[0] for stream in streams)
    assert not [m for m in log if m["type"] in TERMINAL and m["type"] != "completed"]
