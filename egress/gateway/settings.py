"""The gateway's sections of the configuration: `server:` (the HTTP server and its request
limits) and `auth:` (who may send requests). egress.config types its fields as these.

Their defaults are defined here only (the embedded egress.yaml may restate them; a test holds both equal)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

from egress.identity.settings import OidcSettings


class ServerSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    body_read_timeout_s: float = Field(default=30.0, gt=0)
    header_read_timeout_s: float = Field(default=10.0, gt=0, description="deadline for a request's headers")
    public_url: str | None = Field(default=None, description="the URL clients use, if not http://host:port")
    tls_cert_file: Path | None = Field(default=None, description="serve HTTPS with this PEM certificate (chain)")
    tls_key_file: Path | None = Field(default=None, description="the certificate's PEM private key")
    client_ca_file: Path | None = Field(
        default=None,
        description="inbound mTLS: client certificates signed by this CA (PEM) are accepted and verified in the "
        "handshake; a verified certificate's subject names a service account (auth.client_cert_accounts)",
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> ServerSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        if self.client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("client_ca_file needs tls_cert_file and tls_key_file (client certificates need HTTPS)")
        return self


class AuthSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    required: bool = True
    key_refresh_s: float = Field(default=2.0, gt=0, le=300, description="how soon a revoked key stops working")
    oidc: OidcSettings | None = Field(default=None, description="accept OIDC tokens from this issuer (off by default)")
    client_cert_accounts: dict[str, str] = Field(
        default_factory=dict,
        description="inbound mTLS: a verified client certificate's subject common name (CN) -> the service account "
        "it acts as; a certificate whose CN is not listed is refused",
    )
