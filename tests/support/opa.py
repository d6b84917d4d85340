"""A stand-in for a remote OPA server: OPA's REST data API on loopback, deciding with real Rego.

POST /v1/data/<path> {"input": ...} -> {"result": <data.<path>>} (no "result" when undefined),
as OPA answers. It evaluates with regopy, so its decisions are those of the policy it serves.
`mode` injects the failures a gateway must survive: slow, undefined, garbage, error.
"""

from __future__ import annotations

import asyncio
import json
import threading

# RE2 before regopy (see egress/policy/rego.py: the load order decides which operator new
# libstdc++ binds to, and the other order aborts the process on some patterns).
import re2  # noqa: F401, I001 - load order only
import regopy
from aiohttp import web

from egress.policy.rego import RegoSource, new_interpreter
from tests.support.gateway import free_port


class FakeOpa:
    def __init__(self, source: RegoSource, data: dict) -> None:
        self._interpreter = new_interpreter(source, data)
        self.port = free_port()
        self.mode = "ok"  # ok | slow | undefined | garbage | error | unhealthy
        self.requests: list[dict] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeOpa:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake OPA did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_post("/v1/data/{path:.*}", self._data)
        app.router.add_get("/health", self._health)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    async def _health(self, request: web.Request) -> web.Response:
        """OPA's health endpoint: 200 {} when it can serve; 500 in "unhealthy" mode."""
        if self.mode == "unhealthy":
            return web.json_response({"error": "not ready"}, status=500)
        return web.json_response({})

    async def _data(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(body)
        if self.mode == "slow":
            await asyncio.sleep(2)
        if self.mode == "garbage":
            return web.Response(body=b"<html>proxy error</html>", content_type="text/html")
        if self.mode == "error":
            return web.json_response({"code": "internal_error", "message": "boom"}, status=500)
        if self.mode == "undefined":
            return web.json_response({})
        query = "data." + request.match_info["path"].strip("/").replace("/", ".")
        self._interpreter.set_input(regopy.Input(body["input"]))
        output = str(self._interpreter.query(query))
        if output == "undefined":
            return web.json_response({})
        return web.json_response({"result": json.loads(output)["expressions"][0]})
