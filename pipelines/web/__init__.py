"""``netquality web``: JSON API, live feed (SSE) and dashboards over Postgres and the levels topic.

:func:`create_app` builds the Starlette app; :func:`run_web` serves it with uvicorn.
"""

from pipelines.web.app import create_app
from pipelines.web.server import run_web

__all__ = ["create_app", "run_web"]
