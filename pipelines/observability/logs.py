"""Structured logs: one JSON object per line, so log shippers need no parsing rules.

``NETQUALITY_LOG_FORMAT=json`` (the compose default) switches every service to it; ``text``
(the default) keeps the human format for terminals. Extra fields passed with
``log.info(..., extra={"partition": 3})`` become keys of the JSON object.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    """Formats a record as a JSON line: time, level, logger, service, message, extras."""

    def __init__(self, service: str = "netquality") -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "service": self.service,
            "pid": record.process,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def logging_config(level: str, fmt: str, service: str) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document (Faust's worker takes one as ``logging_config``)."""
    if fmt not in ("text", "json"):
        raise ValueError(f"NETQUALITY_LOG_FORMAT must be text or json, not {fmt!r}")
    formatter: dict[str, Any] = (
        {"()": JsonFormatter, "service": service} if fmt == "json" else {"format": TEXT_FORMAT}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"netquality": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "netquality",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def configure_logging(level: str, fmt: str, service: str) -> None:
    """Install the netquality log format on the root logger of this process."""
    import logging.config  # noqa: PLC0415 - only services configure logging

    logging.config.dictConfig(logging_config(level, fmt, service))
