"""The ASGI application: every face's router, the documentation routes, and the background work."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from cyclotron import __version__
from cyclotron.api.dashboard import serve_dashboard
from cyclotron.api.frontend import serve_frontend
from cyclotron.api.limits import BodyLimit
from cyclotron.api.metrics import HttpLatency
from cyclotron.api.metrics import router as metrics_router
from cyclotron.api.native.alphafold import router as alphafold_router
from cyclotron.api.native.files import router as files_router
from cyclotron.api.native.progress import router as progress_router
from cyclotron.api.native.results import router as results_router
from cyclotron.api.native.routes import router as native_router
from cyclotron.api.native.structures import router as structures_router
from cyclotron.api.native.submission import router as submission_router
from cyclotron.api.native.system import router as system_router
from cyclotron.api.upload.routes import router as upload_router
from cyclotron.api.worker.routes import router as worker_router
from cyclotron.api.yaptide.auth import Sessions
from cyclotron.api.yaptide.auth import router as yaptide_auth_router
from cyclotron.api.yaptide.cors import FaceCors
from cyclotron.api.yaptide.errors import error_response
from cyclotron.api.yaptide.jobs import router as yaptide_jobs_router
from cyclotron.api.yaptide.results import router as yaptide_results_router
from cyclotron.api.yaptide.worker import router as yaptide_worker_router
from cyclotron.services.access.accounts import Accounts
from cyclotron.services.access.keycloak import KeycloakVerifier
from cyclotron.services.core import Core
from cyclotron.services.running.batches import BatchRunner
from cyclotron.services.scheduling.dispatcher import Dispatcher

log = logging.getLogger(__name__)

DOCS_PATH = "/swagger-ui/"
LOCAL_ORIGINS = r"^https?://(localhost|127\.0\.0\.1|\[::1\])(:\d+)?$"
OPENAPI_PATH = "/openapi.json"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _SplitCors(FaceCors):
    def __init__(self, app: Any, native_options: dict[str, Any], origins: list[str]) -> None:
        super().__init__(app, CORSMiddleware(app, **native_options), origins)


def _answer_framework_errors(app: FastAPI) -> None:
    """Unknown routes, wrong methods and schema errors: /api keeps FastAPI's shape; every
    other path answers in the YAPTIDE envelope ({message, status_code}, 400 for 422)."""

    def native(request: Request) -> bool:
        return request.url.path == "/api" or request.url.path.startswith("/api/")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if native(request):
            return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
        message = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code)
        return error_response(message or str(exc.detail), exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        if native(request):
            # ASCII-escaped: an error echoes its input, which may hold a lone surrogate that
            # UTF-8 cannot carry (domain/text.py).
            detail = json.dumps({"detail": jsonable_encoder(exc.errors())})
            return Response(detail, 422, media_type="application/json")
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
        return error_response(f"Invalid {where or 'request'}: {first.get('msg', '')}", 400)


def create_app(core: Core, *, run_background: bool = True) -> FastAPI:
    """Assemble the faces over one core; the dispatcher runs for the app's lifetime."""
    docs = core.settings.server.docs

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not core.settings.auth_enabled and not _is_loopback(core.settings.server.host):
            log.warning(
                "authentication is disabled and the server listens on %s: anyone who can reach "
                "it can run jobs; set [auth] enabled = true or CYCLOTRON_API_KEY",
                core.settings.server.host,
            )
        dispatcher = Dispatcher(core) if run_background else None
        batch = BatchRunner(core, core.settings.server.own_url()) if run_background else None
        app.state.batch = batch
        if dispatcher is not None:
            dispatcher.start()
        if batch is not None:
            batch.start()
        try:
            yield
        finally:
            if batch is not None:
                batch.stop()
            if dispatcher is not None:
                dispatcher.stop()
            core.close()

    app = FastAPI(
        title="Cyclotron",
        version=__version__,
        description="Self-hosted job server for scientific simulations.",
        docs_url=DOCS_PATH if docs else None,
        redoc_url=None,
        openapi_url=OPENAPI_PATH if docs else None,
        lifespan=lifespan,
    )
    app.state.core = core
    app.state.accounts = Accounts(core)
    app.state.sessions = Sessions()
    app.state.keycloak = KeycloakVerifier(core.settings.yaptide.keycloak)
    # A trailing slash is served like the path without it, never redirected (yaptide.md §1.1).
    app.router.redirect_slashes = False
    # /upload streams its body to disk under its own limit and error shape.
    app.add_middleware(
        BodyLimit, limit=core.settings.server.max_upload_bytes, exempt=frozenset({"/upload"})
    )
    app.include_router(upload_router)
    # Routes are tried one after another: the YAPTIDE face's status and list (its web UI
    # polls them for every unfinished job) and its workers' reports come early. The faces'
    # paths are disjoint, so the order changes no answer.
    app.include_router(yaptide_jobs_router)
    app.include_router(yaptide_worker_router)
    app.include_router(native_router)
    app.include_router(progress_router)
    app.include_router(submission_router)
    app.include_router(system_router)
    app.include_router(results_router)
    app.include_router(alphafold_router)
    app.include_router(files_router)
    app.include_router(structures_router)
    app.include_router(metrics_router)
    app.include_router(yaptide_auth_router)
    app.include_router(yaptide_results_router)
    app.include_router(worker_router)
    _answer_framework_errors(app)
    app.add_middleware(HttpLatency, metrics=core.metrics)
    # Browser origins allowed by [api] cors_origins; localhost ones too when the server
    # itself listens on loopback (a developer's UI on another port).
    # The YAPTIDE face's rules cover every path but /api, whose own rules follow.
    app.add_middleware(
        _SplitCors,
        native_options={
            "allow_origins": core.settings.api.cors_origins,
            "allow_origin_regex": (
                LOCAL_ORIGINS if _is_loopback(core.settings.server.host) else None
            ),
            "allow_methods": ["GET", "POST", "DELETE", "OPTIONS"],
            "allow_headers": [
                "Authorization",
                "Content-Type",
                "Idempotency-Key",
                "Last-Event-ID",
                "Range",
                "If-None-Match",
            ],
            "expose_headers": [
                "Content-Disposition",
                "Content-Range",
                "ETag",
                "Location",
                "Retry-After",
            ],
        },
        origins=core.settings.yaptide.cors_origins,
    )
    # The dashboard at /ui/; browsers asking for / go there unless a site front end has it.
    serve_dashboard(app, take_root=core.settings.api.frontend_dir is None)
    if core.settings.api.frontend_dir is not None:
        serve_frontend(app, core.settings.api.frontend_dir, core.settings.server.root_message)
    if docs:

        @app.get("/swagger", include_in_schema=False)
        def swagger_redirect() -> RedirectResponse:
            return RedirectResponse(DOCS_PATH, status_code=307)

        @app.get("/api-docs/openapi.json", include_in_schema=False)
        def openapi_alias() -> JSONResponse:
            return JSONResponse(app.openapi())

    return app
