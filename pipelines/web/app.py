"""``create_app(settings)``: the Starlette app, its services and its lifespan.

Why Starlette (with uvicorn): the service is a handful of JSON routes, a long-lived SSE
stream per dashboard and some server-rendered pages; Starlette does exactly that on asyncio
with few dependencies, and the HTTP ingest uses it too, so one stack serves both. FastAPI would
add pydantic and a second model layer next to msgspec; Faust's web layer (aiohttp) is tied to
the worker process, which should not also serve browsers.

Extra routes (the ingest's ``IngestService.routes()``) and extra services (async context
managers entered in the lifespan, in order, and left in reverse) can be passed in.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from pipelines.access import load_signing_keys
from pipelines.config import Settings
from pipelines.kafka.clients import KafkaClients
from pipelines.observability import METRICS
from pipelines.web.api import api_routes
from pipelines.web.auth import TokenRegistry
from pipelines.web.errors import ApiError, api_error_handler, http_error_handler
from pipelines.web.feed import FeedHub
from pipelines.web.guard import Guard
from pipelines.web.pages import page_routes
from pipelines.web.queries import Limits, Queries

log = logging.getLogger("netquality.web")
STATIC = Path(__file__).resolve().parent / "static"


@dataclass
class WebState:
    """What the handlers share: settings, the database reader, the feed hub, the guard."""

    settings: Settings
    queries: Queries
    hub: FeedHub
    guard: Guard


class AccessLog:
    """Logs method, path (never the query string: it may carry ?token=), status and time."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def record(message: dict) -> None:  # type: ignore[type-arg]
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            elapsed = time.perf_counter() - start
            log.info("%s %s %s %.1fms", scope["method"], scope["path"], status, elapsed * 1000)
            # The route template ("/api/rooms/{room_sid}/history"), never the concrete path:
            # room ids in labels would grow the series count with traffic.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            METRICS.http_requests.labels(route=route, status=str(status)).inc()
            METRICS.http_seconds.labels(route=route).observe(elapsed)


def create_app(
    settings: Settings,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    services: Sequence[AbstractAsyncContextManager[object]] = (),
    tokens: TokenRegistry | None = None,
) -> Starlette:
    """The web app for resolved settings (``database_url`` and the broker must be set)."""
    if not settings.database_url or not settings.kafka_bootstrap_servers:
        raise ValueError("create_app needs resolved settings (see pipelines.runtime.Runtime)")
    registry = tokens or TokenRegistry.from_sources(settings.web_tokens, settings.web_tokens_file)
    if not len(registry):
        log.warning("no API tokens configured (NETQUALITY_WEB_TOKENS): every request gets 401")
    queries = Queries(settings.database_url, Limits(max_rows=settings.web_max_rows))
    hub = FeedHub(
        KafkaClients(settings),
        settings.topic_levels,
        # A live feed: the worker's short fetch wait (pipelines/streaming/faust/fetchwait.py).
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
    )
    access_keys = load_signing_keys(settings.access_keys, settings.access_keys_file)
    state = WebState(settings, queries, hub, Guard(registry, queries, access_keys))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            await hub.start()
            stack.push_async_callback(hub.stop)
            stack.callback(queries.close)
            for service in services:
                await stack.enter_async_context(service)
            yield

    routes: list[BaseRoute] = [
        *api_routes(),
        *page_routes(),
        *extra_routes,
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={ApiError: api_error_handler, HTTPException: http_error_handler},
    )
    app.state.web = state
    app.add_middleware(AccessLog)
    return app
