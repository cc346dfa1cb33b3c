"""The ASGI application: every face's router, the documentation routes, and the background work."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, RedirectResponse

from cyclotron import __version__
from cyclotron.api.limits import BodyLimit
from cyclotron.api.metrics import HttpLatency
from cyclotron.api.metrics import router as metrics_router
from cyclotron.api.native.files import router as files_router
from cyclotron.api.native.progress import router as progress_router
from cyclotron.api.native.routes import router as native_router
from cyclotron.api.native.submission import router as submission_router
from cyclotron.api.native.system import router as system_router
from cyclotron.api.upload.routes import router as upload_router
from cyclotron.services.core import Core
from cyclotron.services.dispatcher import Dispatcher

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
        if dispatcher is not None:
            dispatcher.start()
        try:
            yield
        finally:
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
    # /upload streams its body to disk under its own limit and error shape.
    app.add_middleware(
        BodyLimit, limit=core.settings.server.max_upload_bytes, exempt=frozenset({"/upload"})
    )
    app.include_router(upload_router)
    app.include_router(native_router)
    app.include_router(progress_router)
    app.include_router(submission_router)
    app.include_router(system_router)
    app.include_router(files_router)
    app.include_router(metrics_router)
    app.add_middleware(HttpLatency, metrics=core.metrics)
    # Browser origins allowed by [api] cors_origins; localhost ones too when the server
    # itself listens on loopback (a developer's UI on another port).
    app.add_middleware(
        CORSMiddleware,
        allow_origins=core.settings.api.cors_origins,
        allow_origin_regex=LOCAL_ORIGINS if _is_loopback(core.settings.server.host) else None,
        allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID", "Range", "If-None-Match"],
        expose_headers=["Content-Disposition", "Content-Range", "ETag", "Location", "Retry-After"],
    )
    if docs:

        @app.get("/swagger", include_in_schema=False)
        def swagger_redirect() -> RedirectResponse:
            return RedirectResponse(DOCS_PATH, status_code=307)

        @app.get("/api-docs/openapi.json", include_in_schema=False)
        def openapi_alias() -> JSONResponse:
            return JSONResponse(app.openapi())

    return app
