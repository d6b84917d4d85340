"""Log output: text (the default) or JSON lines (`logging.format: json`), and the optional
access log (`logging.access_log`), one line per request.

Invariant: no log line carries request content, a header value, a credential or a query string.
Log calls across egress write identifiers, counts and error classes only; the access line is
built from the request's audit record (which holds none of those) and never from the request.
uvicorn's own access log stays off: it writes the path with its query string (a Gemini client
may put its API key in `?key=`).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import orjson

from egress.core.audit_record import AuditRecord
from egress.telemetry.settings import LogFormat, LoggingSettings

ACCESS_LOGGER = "egress.access"
# Set by `egress serve` for its worker processes (which set up their own logging): --log-level.
ENV_LOG_LEVEL = "EGRESS_LOG_LEVEL"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The access line's fields, in this order (`extra={"egress": {...}}` on the record).
ACCESS_FIELDS = (
    "request_id", "user", "team", "api", "endpoint", "jurisdiction", "decision", "outcome", "status", "error_code",
    "latency_ms",
)  # fmt: skip


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, and the access fields when present.
    An exception is written by its type only (its message may quote what failed to parse)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "egress", None)
        if isinstance(fields, dict):
            doc.update(fields)
        if record.exc_info and record.exc_info[0] is not None:
            doc["exception"] = record.exc_info[0].__name__
        return orjson.dumps(doc).decode()


def configure_logging(settings: LoggingSettings, level: str = "info") -> None:
    """The root handler for this process (the server, or a worker process at its start)."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    if settings.format is LogFormat.JSON:
        # uvicorn's loggers go through the same handler (their own would write text).
        for name in ("uvicorn", "uvicorn.error"):
            logger = logging.getLogger(name)
            logger.handlers.clear()
            logger.propagate = True


class AccessLog:
    """The per-request line, written only when `logging.access_log` is on."""

    def __init__(self) -> None:
        self._log = logging.getLogger(ACCESS_LOGGER)

    def write(self, record: AuditRecord) -> None:
        decision = record.decision
        latency = record.latency_ms
        fields = {
            "request_id": record.request_id,
            "user": record.user,
            "team": record.team,
            "api": str(record.api) if record.api is not None else None,
            "endpoint": record.endpoint,
            "jurisdiction": record.jurisdiction,
            "decision": str(decision.action) if decision is not None and decision.action is not None else None,
            "outcome": str(record.outcome),
            "status": record.status,
            "error_code": record.error_code,
            "latency_ms": latency.total if latency is not None else None,
        }
        self._log.info(
            "%s %s %s -> %s %s %s",
            fields["request_id"],
            fields["api"],
            fields["user"],
            fields["endpoint"],
            fields["outcome"],
            fields["status"],
            extra={"egress": fields},
        )
