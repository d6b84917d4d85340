"""`egress demo`: one request through a real gateway, with no provider key.

A built-in upstream (egress.cli.demo_upstream, the Anthropic Messages wire format on loopback)
echoes what it receives. The gateway runs on the embedded defaults in a temporary data
directory, its Anthropic endpoint pointed at that upstream. One streamed request carries a
freshly generated AWS access key id and an e-mail address; the demo prints what the client sent,
what the provider received (placeholders), what the client got back (restored), where the
request was routed and its audit record (finding kinds, never values).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import click
import orjson
import uvicorn
import yaml

from egress.app import build_app, open_configured_store
from egress.cli.demo_upstream import DemoUpstream, last_user_text
from egress.cli.serve import CompileNotice, bind_listener
from egress.config import load_config
from egress.core.audit_record import parse_record
from egress.gateway.auth import new_key
from egress.gateway.http_protocol import with_header_timeout

MODEL = "claude-sonnet-5-5"
EMAIL = "maria.rossi@acme-robotics.it"
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def fresh_aws_key_id() -> str:
    """An access key id of the real shape, random (not the documentation example), valid nowhere."""
    return "AKIA" + "".join(secrets.choice(_BASE32) for _ in range(16))


def demo_config(directory: Path, upstream_url: str) -> Path:
    """The embedded defaults, with a temporary data directory and the Anthropic endpoint (the
    bundled catalog's facts: Anthropic, US) sent to the simulator instead of api.anthropic.com."""
    doc = {
        "data_dir": str(directory / "data"),
        "providers": [
            {
                "name": "anthropic",
                "catalog": "anthropic",
                "base_url": upstream_url,
                "models": ["claude-*"],
                "credentials": {"passthrough": True},
            }
        ],
    }
    path = directory / "egress.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _stream(url: str, gateway_key: str, prompt: str) -> str:
    """A streamed Messages request, as Claude Code sends it; the text of the answer."""
    request = urllib.request.Request(
        url + "/v1/messages",
        data=orjson.dumps(
            {"model": MODEL, "max_tokens": 256, "stream": True, "messages": [{"role": "user", "content": prompt}]}
        ),
        headers={
            "content-type": "application/json",
            "anthropic-version": "2023-06-01",
            "x-api-key": "demo-provider-credential",  # passed through: the simulator takes any
            "x-egress-key": gateway_key,
        },
        method="POST",
    )
    text: list[str] = []
    # No proxy: the gateway is on loopback (urllib would otherwise follow $http_proxy there).
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        for line in response:
            if line.startswith(b"data: "):
                event = orjson.loads(line[6:])
                if event.get("type") == "content_block_delta" and event["delta"].get("type") == "text_delta":
                    text.append(event["delta"]["text"])
    return "".join(text)


class _Gateway:
    """The real gateway app, served by uvicorn on a loopback socket in a background thread."""

    def __init__(self, app: Any, header_timeout_s: float) -> None:
        self.sock = bind_listener("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(
            app, http=with_header_timeout(header_timeout_s), lifespan="on", access_log=False, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), name="demo-gateway", daemon=True
        )

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise click.ClickException("the gateway did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True  # the lifespan shutdown writes the queued audit records
        self.thread.join(30)
        self.sock.close()


def _say(title: str, body: str) -> None:
    click.echo(click.style(title, bold=True))
    click.echo("  " + body.replace("\n", "\n  "))
    click.echo()


@click.command("demo")
def demo_command() -> None:
    """Show masking, restoration and routing against a built-in simulator (no provider key)."""
    # The gateway's own log (start, stop, "SIGHUP is not available" off the main thread) is not
    # what the demo shows; errors still print.
    logging.getLogger("egress").setLevel(logging.ERROR)
    upstream = DemoUpstream().start()
    with tempfile.TemporaryDirectory(prefix="egress-demo-") as tmp:
        config = load_config(demo_config(Path(tmp), upstream.url))
        notice = CompileNotice(config.detection.cache_dir)
        app = build_app(config, on_compile=notice)
        notice.done()
        store = open_configured_store(config)
        gateway_key, key = new_key("demo", None)
        store.create_key(key)
        gateway = _Gateway(app, config.server.header_read_timeout_s)
        gateway.start()
        try:
            secret = fresh_aws_key_id()
            prompt = f"Deploy with the AWS key {secret} and mail the report to {EMAIL}, please."
            answer = _stream(gateway.url, gateway_key, prompt)
        finally:
            gateway.stop()
            upstream.stop()
        rows = store.audit_tail(1)
        store.close()
    received = [r for r in upstream.received if r.path.startswith("/v1/messages")]
    if not received or not rows:
        raise click.ClickException("the request did not reach the simulator or was not audited")
    seen = last_user_text(orjson.loads(received[-1].body))
    record = parse_record(rows[-1].entry.canonical)
    click.echo(
        f"egress demo: a gateway on the embedded defaults, its Anthropic endpoint on a simulator at {upstream.url}\n"
    )
    _say("1. The client sent (a made-up AWS access key id and an e-mail address):", prompt)
    _say("2. The provider received (masked before it left):", seen)
    _say("3. The client got back (the provider echoed it; egress restored the values):", answer)
    _say(
        "4. Routed to:",
        f"endpoint {record.endpoint} ({record.jurisdiction}, region {record.region}), outcome {record.outcome}",
    )
    _say(
        "5. The audit record (finding kinds and counts, never the values):",
        orjson.dumps(record.as_json(), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode(),
    )
    leaked = secret in seen or EMAIL in seen
    restored = secret in answer and EMAIL in answer
    if leaked or not restored:
        click.echo(f"demo FAILED: leaked to the provider: {leaked}; restored for the client: {restored}", err=True)
        sys.exit(1)
    click.echo("The secret and the address never reached the provider; the client saw them restored.")
