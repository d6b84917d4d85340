"""The `siem:` section of the configuration: where the audit is delivered (egress.config types its
field as this; egress.siem.delivery reads it). Its defaults are defined here only.

Each sink has a unique `name`: it keys the sink's persisted cursor, so renaming a sink starts its
delivery again from the first record."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Delivery(BaseModel):
    """How one sink is fed: batch size, the bounded retry backoff, the lease."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    batch_size: int = Field(default=500, ge=1, le=50_000, description="records per send")
    poll_interval_s: float = Field(
        default=0.5, gt=0, le=60, description="how often a caught-up sink looks for new records"
    )
    timeout_s: float = Field(default=10.0, gt=0, le=300, description="one send (connect, write, acknowledgement)")
    # Retries: first after backoff_initial_s, doubling up to backoff_cap_s, each delay drawn
    # uniformly from [delay/2, delay] (jitter), forever: a sink outage never drops a record.
    backoff_initial_s: float = Field(default=0.5, gt=0, le=60)
    backoff_cap_s: float = Field(default=30.0, gt=0, le=3600)
    lease_ttl_s: float = Field(
        default=30.0, gt=0, le=3600, description="after a holder stops renewing, another process takes over"
    )

    @model_validator(mode="after")
    def _cap(self) -> Delivery:
        if self.backoff_cap_s < self.backoff_initial_s:
            raise ValueError("backoff_cap_s must be at least backoff_initial_s")
        if self.lease_ttl_s <= self.timeout_s:
            raise ValueError("lease_ttl_s must exceed timeout_s (a send must end before its lease does)")
        return self


class _Sink(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="keys the persisted cursor")
    delivery: Delivery = Delivery()
    ca_file: Path | None = Field(default=None, description="PEM CA bundle for the sink's TLS certificate")
    # For a SIEM that authenticates its senders by certificate (mutual TLS).
    client_cert_file: Path | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    client_key_file: Path | None = Field(default=None, description="its PEM private key")

    @model_validator(mode="after")
    def _client_pair(self) -> _Sink:
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("client_cert_file and client_key_file go together")
        return self


class SyslogSink(_Sink):
    """RFC 5424 messages over TCP, octet-counted (RFC 6587), over TLS unless `tls: false`."""

    type: Literal["syslog"]
    address: str = Field(description="host:port")
    tls: bool = True
    server_name: str | None = Field(default=None, description="the name the certificate must carry (default: host)")
    hostname: str | None = Field(default=None, description="HOSTNAME field (default: this machine's name)")
    app_name: str = "egress"
    facility: int = Field(default=13, ge=0, le=23, description="13: log audit")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) <= 65535:
            raise ValueError("address is host:port, e.g. siem.example.org:6514")
        return value

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        return host.strip("[]"), int(port)


class HttpFormat(StrEnum):
    SPLUNK_HEC = "splunk_hec"  # POST /services/collector/event, newline-separated event objects
    ELASTIC_BULK = "elastic_bulk"  # POST /_bulk, NDJSON action + document per record


class HttpSink(_Sink):
    """Batches of JSON over HTTP(S): Splunk HEC or Elasticsearch/OpenSearch bulk."""

    type: Literal["http"]
    url: str = Field(description="the base URL (…/services/collector/event or …/_bulk is appended)")
    format: HttpFormat
    token_env: str | None = Field(
        default=None, description="environment variable holding the HEC token, or the Elastic API key"
    )
    index: str | None = Field(default=None, description="Splunk index / Elastic index (Elastic default: egress-audit)")
    sourcetype: str = "egress:audit"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")


class OtlpSink(_Sink):
    """OTLP/HTTP logs (protobuf) to a collector's /v1/logs."""

    type: Literal["otlp"]
    url: str = Field(description="the logs URL, e.g. http://collector:4318/v1/logs")
    service_name: str = "egress"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


SinkSettings = Annotated[SyslogSink | HttpSink | OtlpSink, Field(discriminator="type")]


class SiemSettings(BaseModel):
    """`siem.sinks`: none by default (no delivery task runs)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sinks: tuple[SinkSettings, ...] = ()

    @field_validator("sinks")
    @classmethod
    def _unique(cls, value: tuple[SinkSettings, ...]) -> tuple[SinkSettings, ...]:
        names = [s.name for s in value]
        duplicate = next((n for n in names if names.count(n) > 1), None)
        if duplicate is not None:
            raise ValueError(f"sink name {duplicate!r} is used twice (it keys the sink's cursor)")
        return value
