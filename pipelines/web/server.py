"""``netquality web``: serve :func:`create_app` with uvicorn until SIGTERM/SIGINT."""

from __future__ import annotations

import logging

from pipelines.config import Settings


def run_web(settings: Settings, loglevel: str = "info") -> None:
    """Resolve endpoints (embedded servers when unset), migrate an embedded db, serve."""
    import uvicorn  # noqa: PLC0415

    from pipelines.runtime import Runtime  # noqa: PLC0415
    from pipelines.storage import migrate  # noqa: PLC0415
    from pipelines.streaming.topics import ensure_topics  # noqa: PLC0415
    from pipelines.web.app import create_app  # noqa: PLC0415
    from pipelines.web.auth import TokenConfigError  # noqa: PLC0415

    logging.basicConfig(
        level=loglevel.upper(), format="[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"
    )
    embedded_db = not settings.database_url
    with Runtime(settings) as runtime:
        resolved = runtime.settings
        assert resolved.database_url
        ensure_topics(resolved)
        if embedded_db:
            migrate.upgrade(resolved.database_url)
        try:
            app = create_app(resolved)
        except TokenConfigError as exc:
            raise SystemExit(f"netquality web: {exc}") from None
        logging.getLogger("netquality.web").info(
            "dashboards at http://%s:%d/", resolved.web_host, resolved.web_port
        )
        # access_log=False: uvicorn's log line has the query string, which may hold ?token=.
        uvicorn.run(app, host=resolved.web_host, port=resolved.web_port, access_log=False,
                    log_level=loglevel, lifespan="on")
