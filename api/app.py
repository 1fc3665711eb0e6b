"""The FastAPI app factory. The lifespan starts the event feed, the scheduler and (deciding
on exchange data) the ingestion workers, and on
shutdown lets the decision in flight finish before the database is closed.

Where routes run: the short reads (a page of a list, one record, the key check) are
``async`` and go through ``Service.read``: on the embedded SQLite they run inline on the
event loop — each takes well under a millisecond, and handed to worker threads they spent
most of their time waiting for the GIL behind each other (3× fewer requests a second in
bench/api.py); on a database across the network they run in worker threads, so a slow
round trip never holds the loop. The long or writing routes — deciding, pause, resume,
panic, the book's replay, the metrics' counts — always run in worker threads: a panic
waiting for the database's write lock must not stop /health and /ping from answering. While
a panic runs, reads hold back briefly so the panic has the interpreter (``Service.panic``).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from api import scheduler as scheduler_module
from api.errors import install_error_handlers
from api.routes import book, control, decisions, stream, system
from api.service import Service
from core.version import ENGINE_VERSION

log = logging.getLogger("sigmax.api")

DESCRIPTION = """
SIGMAX decides crypto trades per symbol and candle: bull, bear and researcher agents argue,
a debate is judged, RL and news-sentiment signals are added, and a deterministic risk gate
approves, reduces or blocks. Every decision is an immutable record.

Authenticate with `Authorization: Bearer <key>`; keys come from `sigmax keys create --scope
read|trade|admin`. `read` reads everything, `trade` also triggers decisions, `admin` also
pauses, resumes and panics. Every error has the shape `{"error": {"code", "message",
"details"}}`. Lists are newest first with cursor pagination.
"""


def create_app(service: Service) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        feed_task = asyncio.create_task(service.events.run(), name="event-feed")
        scheduler_task = (
            asyncio.create_task(service.scheduler.run(), name="scheduler")
            if service.scheduler is not None
            else None
        )
        workers_task = (
            asyncio.create_task(service.workers.run(service.stopping), name="workers")
            if service.workers is not None
            else None
        )
        try:
            yield
        finally:
            grace = service.settings.service.shutdown_grace_seconds
            if scheduler_task is not None:
                await scheduler_module.stop(scheduler_task, service.stopping, grace)
            service.stopping.set()
            await feed_task
            if workers_task is not None:
                await workers_task
            await asyncio.to_thread(service.feed.close)
            log.info("service stopped")

    app = FastAPI(
        title="SIGMAX",
        version=ENGINE_VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url=None,  # served below from the installed package, not a CDN
        redoc_url=None,
    )
    app.state.service = service
    install_error_handlers(app)
    v1 = APIRouter(prefix="/api/v1")
    for module in (system, decisions, control, book, stream):
        v1.include_router(module.router)
    app.include_router(v1)
    _serve_docs_offline(app)
    return app


def _serve_docs_offline(app: FastAPI) -> None:
    """/docs with Swagger UI's files from the swagger-ui-bundle package: FastAPI's default
    page loads them from a CDN, and the service must work without the internet."""
    app.mount("/docs-assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="SIGMAX API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )
