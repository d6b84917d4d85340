"""Run the real gateway app on a loopback socket inside the test process.

The app is the one `egress serve` runs (built by `egress.app.build_app`), served by uvicorn on a
real port; tests may swap one stage for a failing one to show the pipeline fails closed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from egress.app import build_app
from egress.config import Config, load_config
from egress.gateway.asgi import GatewayApp
from egress.gateway.http_protocol import with_header_timeout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp: Path, sim_url: str, **extra: Any) -> Path:
    """A config with one Anthropic and one OpenAI endpoint, both on the simulator."""
    doc: dict[str, Any] = {
        "data_dir": str(tmp / "data"),
        "server": {"body_read_timeout_s": 5, "header_read_timeout_s": 2},
        "upstream": {"connect_timeout_s": 2, "read_timeout_s": 30},
        "audit": {"flush_interval_ms": 5},
        "auth": {"required": True, "key_refresh_s": 0.2},
        "providers": [
            {
                "name": "sim-anthropic",
                "api": "anthropic",
                "base_url": sim_url,
                "models": ["claude-*"],
                "credentials": {"env": "SIM_ANTHROPIC_KEY"},
                "operator": "Simulated Anthropic",
                "jurisdiction": "US",
                "region": "us-east-1",
                "retention_days": 30,
                "trains_on_api_data": False,
                "dpa": True,
                "certifications": ["SOC 2"],
            },
            {
                "name": "sim-openai",
                "api": "openai",
                "base_url": sim_url + "/v1",
                "models": ["gpt-*", "o4-mini", "codex-*"],
                "credentials": {"env": "SIM_OPENAI_KEY"},
                "operator": "Simulated OpenAI",
                "jurisdiction": "US",
                "region": "us",
                "retention_days": 30,
                "trains_on_api_data": False,
                "dpa": True,
            },
        ],
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key] = {**doc[key], **value}
        else:
            doc[key] = value
    path = tmp / "egress.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


SIM_ENV = {"SIM_ANTHROPIC_KEY": "sk-ant-upstream-secret-0001", "SIM_OPENAI_KEY": "sk-upstream-openai-0002"}


class ThreadedGateway:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.app: GatewayApp = build_app(config)
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_file(cls, path: Path) -> ThreadedGateway:
        return cls(load_config(path, env=SIM_ENV))

    @property
    def url(self) -> str:
        scheme = "https" if self.config.server.tls_cert_file else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> ThreadedGateway:
        server = self.config.server
        tls: dict[str, Any] = {}
        if server.tls_cert_file is not None:  # HTTPS, as `egress serve` does with these settings
            tls = {"ssl_certfile": str(server.tls_cert_file), "ssl_keyfile": str(server.tls_key_file)}
        if server.client_ca_file is not None:  # inbound mTLS, as `egress serve` sets it up
            tls.update(ssl_ca_certs=str(server.client_ca_file), ssl_cert_reqs=ssl.CERT_OPTIONAL)
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            loop="uvloop",
            http=with_header_timeout(self.config.server.header_read_timeout_s),
            lifespan="on",
            access_log=False,
            log_level="warning",
            **tls,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve()), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("gateway did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(15)
