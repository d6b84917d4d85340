"""The siem: section: sinks typed by `type`, names unique (they key the cursors), bounds checked."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from egress.config import Config
from egress.siem.settings import HttpFormat, HttpSink, SiemSettings, SyslogSink


def test_sinks_are_typed_by_their_type() -> None:
    settings = SiemSettings.model_validate(
        {
            "sinks": [
                {"name": "soc", "type": "syslog", "address": "siem.example.org:6514", "ca_file": "/etc/ca.pem"},
                {
                    "name": "splunk",
                    "type": "http",
                    "format": "splunk_hec",
                    "url": "https://hec:8088/",
                    "token_env": "T",
                },
                {"name": "otel", "type": "otlp", "url": "http://collector:4318/v1/logs"},
            ]
        }
    )
    syslog, http, otlp = settings.sinks
    assert isinstance(syslog, SyslogSink) and syslog.tls and syslog.host_port == ("siem.example.org", 6514)
    assert isinstance(http, HttpSink) and http.format == HttpFormat.SPLUNK_HEC and http.url == "https://hec:8088"
    assert otlp.delivery.batch_size == 500


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ({"name": "a", "type": "syslog", "address": "no-port"}, "host:port"),
        ({"name": "a", "type": "http", "format": "splunk_hec", "url": "ftp://x"}, "http"),
        ({"name": "a", "type": "http", "format": "graylog", "url": "http://x"}, "splunk_hec"),
        ({"name": "A B", "type": "otlp", "url": "http://x"}, "pattern"),
        ({"name": "a", "type": "kafka"}, "does not match any of the expected tags"),
        (
            {"name": "a", "type": "otlp", "url": "http://x", "delivery": {"timeout_s": 30, "lease_ttl_s": 30}},
            "lease_ttl_s must exceed timeout_s",
        ),
        (
            {"name": "a", "type": "otlp", "url": "http://x", "delivery": {"backoff_initial_s": 5, "backoff_cap_s": 1}},
            "backoff_cap_s",
        ),
        ({"name": "a", "type": "otlp", "url": "http://x", "client_cert_file": "/c.pem"}, "go together"),
    ],
)
def test_bad_sinks_are_refused(sink: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SiemSettings.model_validate({"sinks": [sink]})


def test_sink_names_are_unique() -> None:
    sink = {"name": "same", "type": "otlp", "url": "http://x"}
    with pytest.raises(ValidationError, match="used twice"):
        SiemSettings.model_validate({"sinks": [sink, sink]})


def test_config_types_the_section() -> None:
    field = Config.model_fields["siem"]
    assert field.annotation is SiemSettings and field.default == SiemSettings() and SiemSettings().sinks == ()
