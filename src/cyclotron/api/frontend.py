"""A site's own front end (``[api] frontend_dir``): a static export served at ``/``.

A single-page app exported as files (such as the AlphaFold 3 app's Next.js UI) is served on
the same origin as ``/api``, so the site needs no proxy. A GET that no route of the faces
answers is looked up in the folder: the file itself, ``<path>.html``, ``<path>/index.html``;
a browser asking for a page that is not there gets ``index.html`` (the app routes it). ``/``
is ``index.html`` for a browser, the liveness JSON for everything else. Paths under ``/api``
are never the front end's, and no path leaves the folder (``..``, encoded or not, and links
pointing out are 404).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.routing import Match

INDEX = "index.html"
NATIVE_PREFIX = "/api"


class Frontend:
    """Files of one static export, found the way a static host finds them."""

    def __init__(self, directory: Path) -> None:
        self.root = directory.resolve()

    def file(self, path: str) -> Path | None:
        """The file ``path`` names inside the export, or None; 404 for a path leaving it."""
        parts = [p for p in path.split("/") if p]
        if any(p in (".", "..") or "\\" in p or "\x00" in p for p in parts):
            raise HTTPException(404)
        base = self.root.joinpath(*parts)
        candidates = (
            [base, base.with_name(base.name + ".html"), base / INDEX] if parts else [base / INDEX]
        )
        for candidate in candidates:
            found = candidate.resolve()
            if found.is_file():
                if not found.is_relative_to(self.root):
                    raise HTTPException(404)  # a link out of the folder
                return found
        return None

    def page(self, request: Request, path: str) -> Response:
        """The file for ``path``; ``index.html`` for a browser's unknown page; else 404."""
        if path == NATIVE_PREFIX.strip("/") or path.startswith(NATIVE_PREFIX.strip("/") + "/"):
            raise HTTPException(404)
        found = self.file(path)
        if found is None and _wants_html(request):
            found = self.file("")
        if found is not None:
            return FileResponse(found)
        if _other_methods_route(request):
            raise HTTPException(405)  # as without a front end: a route that takes POST only
        raise HTTPException(404)


def _other_methods_route(request: Request) -> bool:
    """Whether a route of the faces has this path for other methods."""
    return any(
        route.matches(request.scope)[0] == Match.PARTIAL
        for route in request.app.router.routes
        if not (isinstance(route, APIRoute) and route.path == "/{path:path}")
    )


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def serve_frontend(app: FastAPI, directory: Path, root_message: str) -> None:
    """Serve ``directory`` after every route of the faces; ``/`` before them, for browsers."""
    frontend = Frontend(directory)

    async def root(request: Request) -> Response:
        if _wants_html(request):
            return frontend.page(request, "")
        return JSONResponse({"message": root_message})

    async def page(request: Request, path: str) -> Response:
        return frontend.page(request, path)

    app.router.routes.insert(
        0, APIRoute("/", root, methods=["GET", "HEAD"], include_in_schema=False)
    )
    app.add_api_route("/{path:path}", page, methods=["GET", "HEAD"], include_in_schema=False)
