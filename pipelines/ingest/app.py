"""The standalone ingest app (``netquality ingest``): the service's routes plus its lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette

from pipelines.config import Settings
from pipelines.ingest.service import IngestService

log = logging.getLogger(__name__)


def create_ingest_app(
    settings: Settings, *, service: IngestService | None = None, **service_options: Any
) -> Starlette:
    """A Starlette app serving the ingest at the root; the producer lives as long as the app."""
    service = service or IngestService(settings, **service_options)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = Starlette(routes=service.routes(), lifespan=lifespan)
    app.state.ingest = service
    return app


def run_ingest(settings: Settings, *, log_level: str = "info") -> None:
    """Serve the ingest with uvicorn until SIGTERM/SIGINT (uvicorn handles both gracefully)."""
    import uvicorn  # noqa: PLC0415

    app = create_ingest_app(settings)
    log.info("ingest on http://%s:%s/v1/samples -> %s", settings.ingest_host,
             settings.ingest_port, settings.topic_stats)
    uvicorn.run(
        app,
        host=settings.ingest_host,
        port=settings.ingest_port,
        log_level=log_level,
        proxy_headers=True,
        server_header=False,
    )
