"""Structured logs and the Prometheus endpoint (pipelines/observability)."""

from __future__ import annotations

import json
import logging
import urllib.request

import pytest

from pipelines.observability import JsonFormatter, logging_config, serve_metrics
from pipelines.observability.metrics import Metrics
from pipelines.runtime.process import free_port


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("netquality.test", logging.WARNING, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_json_log_line_carries_level_logger_service_message_and_extras() -> None:
    line = JsonFormatter(service="sink").format(_record("lag %d", partition=3, topic="t"))
    entry = json.loads(line)
    assert entry["level"] == "warning"
    assert entry["logger"] == "netquality.test"
    assert entry["service"] == "sink"
    assert entry["message"] == "lag %d"
    assert (entry["partition"], entry["topic"]) == (3, "t")
    assert entry["ts"].endswith("Z")


def test_json_log_line_keeps_exceptions_and_unserialisable_extras() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record("failed", obj=object())
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert "ValueError: boom" in entry["exception"]
    assert entry["obj"].startswith("<object object")


def test_logging_config_rejects_unknown_formats() -> None:
    assert logging_config("info", "json", "worker")["formatters"]["netquality"]["service"] == (
        "worker"
    )
    with pytest.raises(ValueError, match="text or json"):
        logging_config("info", "xml", "worker")


def test_metrics_endpoint_serves_the_registry_and_port_zero_turns_it_off() -> None:
    metrics = Metrics()
    assert serve_metrics(0, metrics=metrics) is False
    metrics.samples.inc(5)
    metrics.dead_letters.labels(service="worker", code="invalid_json").inc()
    port = free_port()
    assert serve_metrics(port, host="127.0.0.1", metrics=metrics) is True
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert "netquality_samples_total 5.0" in body
    assert 'netquality_dead_letters_total{code="invalid_json",service="worker"} 1.0' in body
