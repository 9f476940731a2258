"""Logs as one JSON object a line (CONSENTGATE_LOG_FORMAT=json), for log shippers.

The default ("text") leaves logging as uvicorn and Celery set it up. With "json" the root
logger gets one handler writing JSON to stderr, and uvicorn's and Celery's loggers hand
their records to it instead of printing their own lines.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

# Loggers that uvicorn and Celery give handlers of their own.
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "celery", "celery.task",
                 "celery.worker", "celery.beat")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(log_format: str, level: int = logging.INFO) -> bool:
    """Install the JSON handler if asked for; True if it did."""
    if log_format != "json":
        return False
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in _OWN_HANDLERS:
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    return True
