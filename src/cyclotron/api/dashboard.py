"""Cyclotron's own dashboard at ``/ui/``: static pages that call the native ``/api``.

The pages (``static/``: HTML, a few plain JavaScript modules, CSS) and the front-end packages
they load (``static/vendor/``: Plotly and 3Dmol.js, copied there from npm by
``scripts/dashboard-assets``) are files of this package, so a wheel serves them offline. They
use the native API as any client does, with the user's API key; nothing here is a route of
its own beyond the files. A browser asking for ``/`` is sent to ``/ui/`` unless the site
serves its own front end there (``[api] frontend_dir``); API clients get the liveness JSON.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent / "static"
PREFIX = "/ui"
VENDOR_FILES = ("plotly-cartesian.min.js", "3Dmol-min.js")
# The pages load nothing from elsewhere: every script, style, image and connection is this
# server's (data: and blob: for the plots' images and downloads made in the page).
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; worker-src 'self' blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'"
)


def missing_assets(static: Path = STATIC) -> list[str]:
    """The front-end packages' files not installed (``scripts/dashboard-assets``)."""
    return [name for name in VENDOR_FILES if not (static / "vendor" / name).is_file()]


class _Pages(StaticFiles):
    """The dashboard's files, each answered with the page policy; HTML and our own modules
    revalidated on every load, so an upgraded server is seen at once."""

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Content-Security-Policy"] = POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if "/vendor/" not in str(full_path):
            response.headers["Cache-Control"] = "no-cache"
        return response


class _BrowserRoot:
    """``GET /`` from a browser (one that accepts HTML) is redirected to the dashboard;
    every other request passes (the faces' liveness answer keeps its JSON)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/" and scope["method"] == "GET":
            accept = dict(scope["headers"]).get(b"accept", b"")
            if b"text/html" in accept:
                await RedirectResponse(f"{PREFIX}/", status_code=307)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def serve_dashboard(app: FastAPI, *, take_root: bool) -> None:
    """Serve the dashboard at ``/ui/``; with ``take_root``, send browsers from ``/`` to it."""

    @app.get(PREFIX, include_in_schema=False)
    def dashboard_slash() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    missing = missing_assets()
    if missing:
        log.warning(
            "the dashboard's front-end packages are not installed (%s): its plots and "
            "structure viewer will not show; run scripts/dashboard-assets",
            ", ".join(missing),
        )
    app.mount(PREFIX, _Pages(directory=STATIC, html=True), name="dashboard")
    if take_root:
        app.add_middleware(_BrowserRoot)
