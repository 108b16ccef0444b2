"""``netquality web``: serve :func:`create_app` with uvicorn until SIGTERM/SIGINT.

When ingest tokens are configured, the HTTP ingest for browsers (pipelines/ingest) is mounted
under ``/ingest`` in the same process, so one port serves dashboards, API, feed and ingest.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

from starlette.routing import BaseRoute, Mount

from pipelines.config import Settings


def ingest_parts(
    settings: Settings,
) -> tuple[list[BaseRoute], list[AbstractAsyncContextManager[object]]]:
    """The ingest routes under ``/ingest`` and its producer's lifetime; none without ingest
    tokens or access-token keys."""
    if not (settings.ingest_tokens or settings.ingest_tokens_file or settings.access_keys
            or settings.access_keys_file):
        return [], []
    from pipelines.ingest import IngestService  # noqa: PLC0415

    service = IngestService(settings)

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[object]:
        await service.start()
        try:
            yield service
        finally:
            await service.stop()

    return [Mount("/ingest", routes=service.routes())], [running()]


def _exit_after_shutdown(signum: int, _frame: object) -> None:
    raise SystemExit(0)


def run_web(settings: Settings, loglevel: str = "info") -> None:
    """Resolve endpoints (embedded servers when unset), migrate an embedded db, serve."""
    import uvicorn  # noqa: PLC0415

    from pipelines.access import SigningKeysError  # noqa: PLC0415
    from pipelines.runtime.service import service  # noqa: PLC0415
    from pipelines.web.app import create_app  # noqa: PLC0415
    from pipelines.web.auth import TokenConfigError  # noqa: PLC0415

    with service(settings, "web", loglevel=loglevel, schema="embedded", find_demo=True,
                 metrics=True) as resolved:  # fmt: skip
        try:
            routes, services = ingest_parts(resolved)
            app = create_app(resolved, extra_routes=routes, services=services)
        except (TokenConfigError, SigningKeysError) as exc:
            raise SystemExit(f"netquality web: {exc}") from None
        logging.getLogger("netquality.web").info(
            "dashboards at http://%s:%d/", resolved.web_host, resolved.web_port
        )
        if routes:
            logging.getLogger("netquality.web").info(
                "HTTP ingest at http://%s:%d/ingest/v1/samples",
                resolved.web_host,
                resolved.web_port,
            )
        # access_log=False: uvicorn's log line has the query string, which may hold ?token=.
        # log_config=None: keep the netquality log format installed above.
        # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again so the
        # process reports it; these handlers turn that into a normal exit (status 0) once the
        # server is down, so that the embedded servers above are stopped as well.
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, _exit_after_shutdown)
        uvicorn.run(app, host=resolved.web_host, port=resolved.web_port, access_log=False,
                    log_level=loglevel, lifespan="on", log_config=None)
