"""The client TLS context every sink uses: the system's trust store, or only `ca_file` when set;
certificate and host name always checked."""

from __future__ import annotations

import ssl
from pathlib import Path


def client_context(ca_file: Path | None, cert_file: Path | None = None, key_file: Path | None = None) -> ssl.SSLContext:
    """With `cert_file` and `key_file`, the client certificate a mutual-TLS SIEM asks for."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None and key_file is not None:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx
