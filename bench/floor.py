"""The floor: a bare passthrough on the same stack egress is built on, to measure beside it.

A raw ASGI app on uvicorn (uvloop + httptools, one worker, no access log) that reads the body,
parses and re-serialises it with orjson, POSTs it to the upstream with one shared aiohttp
ClientSession (keep-alive pool), and relays the answer: whole for JSON, chunk by chunk as it
arrives for SSE. No auth, no inspection, no policy, no audit. This is the "faster floor" of
DESIGN.md's performance budget; whatever egress adds on top of it is the pipeline's own cost.

    python bench/floor.py --port 9200 --upstream http://127.0.0.1:9100
"""

from __future__ import annotations

import argparse
from typing import Any

import aiohttp
import orjson
import uvicorn

_DROP = frozenset({b"host", b"content-length", b"connection", b"transfer-encoding", b"accept-encoding"})
_RESP_DROP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


class Floor:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    self.session = aiohttp.ClientSession(
                        connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60),
                        auto_decompress=False,
                        skip_auto_headers=("User-Agent", "Content-Type"),
                    )
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if self.session is not None:
                        await self.session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        if scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = orjson.dumps(orjson.loads(b"".join(chunks)))
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k not in _DROP}
        assert self.session is not None
        async with self.session.post(self.upstream + scope["path"], data=body, headers=headers) as resp:
            out = [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in resp.headers.items()
                if k.lower() not in _RESP_DROP
            ]
            if resp.content_type == "text/event-stream":
                await send({"type": "http.response.start", "status": resp.status, "headers": out})
                async for chunk in resp.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            else:
                raw = await resp.read()
                out.append((b"content-length", str(len(raw)).encode()))
                await send({"type": "http.response.start", "status": resp.status, "headers": out})
                await send({"type": "http.response.body", "body": raw})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, default=9200)
    ap.add_argument("--upstream", default="http://127.0.0.1:9100")
    args = ap.parse_args()
    uvicorn.run(
        Floor(args.upstream),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        server_header=False,
        date_header=False,
    )


if __name__ == "__main__":
    main()
