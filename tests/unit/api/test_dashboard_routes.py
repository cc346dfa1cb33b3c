"""The dashboard's files at ``/ui/``: where browsers land, and what the pages may load."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx

from cyclotron.api.app import create_app
from cyclotron.api.dashboard import STATIC
from cyclotron.services.core import Core, build_core
from cyclotron.settings import load_settings

BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


def ask(core: Core, *paths: str, headers: dict[str, str] | None = None) -> list[httpx.Response]:
    """GET each path from the app in this process, over ASGI, redirects not followed."""

    async def requests() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(core, run_background=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return [await c.get(path, headers=headers) for path in paths]

    return asyncio.run(requests())


def test_browsers_land_on_the_dashboard_and_scripts_keep_the_json(core: Core) -> None:
    landed, page, script, missing = ask(
        core, "/", "/ui/", "/ui/js/main.js", "/ui/js/nothing.js", headers=BROWSER
    )
    assert landed.status_code == 307 and landed.headers["location"] == "/ui/"
    assert page.status_code == 200 and "<main" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert missing.status_code == 404
    liveness, bare = ask(core, "/", "/ui")
    assert liveness.json() == {"message": "pong"}  # scripts keep the liveness JSON
    assert bare.status_code == 307 and bare.headers["location"] == "/ui/"


def test_the_pages_name_no_other_origin() -> None:
    """Every page, script and style of ours loads from the server itself (vendor/ holds the
    npm packages' files, which fetch nothing unless asked to)."""
    ours = [p for p in STATIC.rglob("*") if p.is_file() and "vendor" not in p.parts]
    assert {p.suffix for p in ours} >= {".html", ".js", ".css"}
    absolute = re.compile(r"""(?:src|href|url)\s*[=(]\s*["']?(?:https?:)?//""", re.I)
    for path in ours:
        found = absolute.search(path.read_text())
        assert found is None, f"{path.relative_to(STATIC)} loads from elsewhere: {found}"


def test_a_site_front_end_keeps_the_root(db_url: str, tmp_path: Path) -> None:
    """With ``[api] frontend_dir`` the site's page is what a browser gets at ``/``; the
    dashboard stays at ``/ui/``."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("the site's own page")
    (tmp_path / "cyclotron.toml").write_text("")
    overrides = {
        "server": {"database_url": db_url, "data_dir": str(tmp_path / "data")},
        "api": {"frontend_dir": str(site)},
    }
    core = build_core(load_settings(tmp_path / "cyclotron.toml", environ={}, overrides=overrides))
    try:
        root, dashboard = ask(core, "/", "/ui/", headers=BROWSER)
    finally:
        core.close()
    assert root.text == "the site's own page"
    assert "<main" in dashboard.text
