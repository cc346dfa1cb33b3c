"""``[api] frontend_dir``: a site's static export served at ``/`` beside ``/api``, as the
AlphaFold 3 app's own backend serves its UI (nested routes, the single-page fallback, no path
out of the folder)."""

from __future__ import annotations

import http.client
from pathlib import Path
from typing import Any

import pytest

INDEX = "<!doctype html><title>app</title><div id=root></div>"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # what a browser sends


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A small export in the layout Next.js writes, and a secret beside it."""
    root = tmp_path / "site"
    (root / "_next" / "static").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "index.html").write_text(INDEX)
    (root / "queue.html").write_text("queue page")
    (root / "docs" / "index.html").write_text("docs page")
    (root / "_next" / "static" / "app.js").write_text("console.log('app')")
    (tmp_path / "secret.txt").write_text("not for the web")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    return root


def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """A GET of ``target`` exactly as written (clients would normalise ``..`` away)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", target, headers=HTML)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_the_export_is_served_beside_the_api(start_server: Any, site: Path) -> None:
    live = start_server({"api": {"frontend_dir": str(site)}})
    with live.client() as client:
        assert client.get("/", headers=HTML).text == INDEX
        assert client.get("/").json() == {"message": "pong"}  # scripts keep the liveness JSON
        script = client.get("/_next/static/app.js")
        assert script.status_code == 200 and script.text == "console.log('app')"
        assert "javascript" in script.headers["content-type"]
        assert client.get("/queue", headers=HTML).text == "queue page"  # queue.html
        assert client.get("/docs/", headers=HTML).text == "docs page"  # docs/index.html
        # A page the app routes itself: index.html for a browser, 404 for anything else.
        assert client.get("/queue/42/results", headers=HTML).text == INDEX
        assert client.get("/_next/static/gone.js").status_code == 404
        # /api is the API's: its 404 stays JSON, its routes answer as before.
        missing = client.get("/api/no-such-route", headers=HTML)
        assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
        assert client.get("/api/system/status", headers=HTML).json()["api_version"] == 1
        assert client.get("/upload").status_code == 405  # POST only, as without a front end
        assert client.get("/health").json()["status"] == "healthy"
    traversals = ("/../secret.txt", "/%2e%2e/secret.txt", "/docs/..%2f..%2fsecret.txt")
    for target in (*traversals, "/link.txt"):  # the last: a link out of the folder
        status, body = raw_get(live.port, target)
        assert (status, b"not for the web" in body) == (404, False), (target, status, body)


def test_a_folder_without_an_index_is_refused_at_start(tmp_path: Path) -> None:
    from cyclotron.settings import load_settings

    config = tmp_path / "cyclotron.toml"
    config.write_text(f'[api]\nfrontend_dir = "{tmp_path}"\n')
    with pytest.raises(Exception, match="has no index.html"):
        load_settings(config, environ={})
