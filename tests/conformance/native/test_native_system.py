"""spec/native.md §10 and checklist case 30: system status, services, Prometheus metrics; CORS."""

from __future__ import annotations

from typing import Any

from support.upload import submit, wait_until


def test_case_30_status_services_and_metrics(start_server: Any, backend: str) -> None:
    live = start_server({"services": {"example": {"plugin": "script", "max_runs": 1}}})
    with live.client() as client:
        running = submit(client, "sleep 30\n")
        wait_until(client, running, lambda b: b["status"] == "Running")
        queued = submit(client, "true\n")
        status = client.get("/api/system/status").json()
        assert status["version"] and status["api_version"] == 1
        assert status["database"] == {"kind": backend, "ok": True}
        assert status["services"] == [
            {"name": "example", "version": None, "available": True, "reason": None}
        ]
        assert status["queue"]["pending"] == 1 and status["queue"]["running"] == 1
        assert status["queue"]["by_service"]["example"] == {"pending": 1, "running": 1}
        assert status["running_tasks"] == 1 and status["queue_size"] == 1
        [local] = status["executors"]
        assert local["name"] == "local" and local["busy"] == 1 and local["slots"] >= 1
        services = client.get("/api/services").json()["services"]
        assert services[0]["name"] == "example" and services[0]["input_kinds"] == ["files"]
        assert services[0]["limits"]["max_runs"] == 1 and services[0]["result_kind"] == "files"
        client.post(f"/api/jobs/{running}/cancel")
        wait_until(client, queued)
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and metrics.headers["content-type"].startswith(
            "text/plain"
        )
        text = metrics.text
        assert 'cyclotron_jobs{service="example",state="COMPLETED"} 1.0' in text
        assert 'cyclotron_jobs{service="example",state="CANCELED"} 1.0' in text
        assert 'cyclotron_queue_depth{service="example"} 0.0' in text
        assert (
            'cyclotron_task_duration_seconds_count{outcome="completed",service="example"} 1.0'
            in text
        )
        assert (
            'cyclotron_http_request_duration_seconds_count{method="GET",route="/download/{id}"'
            in text
        )


def test_cors_for_configured_and_local_origins(start_server: Any) -> None:
    live = start_server({"api": {"cors_origins": ["https://portal.example.org"]}})
    with live.client() as client:
        for origin in ("https://portal.example.org", "http://localhost:3000"):
            preflight = client.options(
                "/api/jobs",
                headers={
                    "Origin": origin,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )
            assert preflight.status_code == 200
            assert preflight.headers["access-control-allow-origin"] == origin
            simple = client.get("/api/jobs", headers={"Origin": origin})
            assert simple.headers["access-control-allow-origin"] == origin
        evil = client.get("/api/jobs", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in evil.headers
        refused = client.options(
            "/api/jobs",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert refused.status_code == 400
