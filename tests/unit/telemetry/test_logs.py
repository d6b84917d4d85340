from __future__ import annotations

import logging
import sys

import orjson

from egress.core.audit_record import AuditRecord, Decision, Latency
from egress.telemetry.logs import ACCESS_FIELDS, AccessLog, JsonFormatter


def test_an_exception_is_written_by_its_type_never_its_message() -> None:
    try:
        raise ValueError("could not parse: sk-ant-api03-SECRETVALUE")
    except ValueError:
        exc_info = sys.exc_info()
    line = JsonFormatter().format(
        logging.LogRecord("egress.gateway", logging.ERROR, __file__, 1, "stage %s failed", ("parse",), exc_info)
    )
    doc = orjson.loads(line)
    assert doc["message"] == "stage parse failed" and doc["exception"] == "ValueError"
    assert "SECRETVALUE" not in line


def test_the_access_line_is_built_from_the_record(caplog) -> None:
    record = AuditRecord(
        v=3,
        request_id="egr_1",
        ts=1.0,
        outcome="forwarded",
        api="openai.responses",
        user="ann",
        team="payments",
        endpoint="eu",
        jurisdiction="EU",
        status=200,
        decision=Decision(action="mask", id="d"),
        latency_ms=Latency(gateway=1.0, total=12.5, upstream=11.5),
        path="/v1/responses",
    )
    with caplog.at_level(logging.INFO, logger="egress.access"):
        AccessLog().write(record)
    fields = caplog.records[0].egress
    assert tuple(fields) == ACCESS_FIELDS
    assert (fields["user"], fields["team"], fields["decision"], fields["outcome"], fields["latency_ms"]) == (
        "ann", "payments", "mask", "forwarded", 12.5
    )  # fmt: skip
    doc = orjson.loads(JsonFormatter().format(caplog.records[0]))
    assert doc["request_id"] == "egr_1" and "path" not in doc
