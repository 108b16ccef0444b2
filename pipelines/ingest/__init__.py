"""HTTP ingest for browsers: validated samples over HTTP onto the stats topic.

Mount :meth:`IngestService.routes` in any Starlette app (call ``start``/``stop`` from its
lifespan), or run :func:`create_ingest_app` standalone (``netquality ingest``). The
dependency-free browser script that feeds it is ``static/netquality-stats.js``.
"""

from pipelines.ingest.app import create_ingest_app, run_ingest
from pipelines.ingest.auth import BearerTokens, NoTokensError, load_tokens
from pipelines.ingest.service import IngestCounts, IngestService

__all__ = [
    "BearerTokens",
    "IngestCounts",
    "IngestService",
    "NoTokensError",
    "create_ingest_app",
    "load_tokens",
    "run_ingest",
]
