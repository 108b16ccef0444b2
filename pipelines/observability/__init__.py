"""Operations: Prometheus metrics and structured logs shared by worker, sink and web."""

from pipelines.observability.logs import JsonFormatter, configure_logging, logging_config
from pipelines.observability.metrics import METRICS, serve_metrics

__all__ = ["METRICS", "JsonFormatter", "configure_logging", "logging_config", "serve_metrics"]
