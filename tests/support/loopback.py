"""An aiohttp application served on 127.0.0.1 (a free port) from its own thread and event loop,
so synchronous tests can run it beside the gateway: the simulator and the OIDC issuer use it."""

from __future__ import annotations

import asyncio
import ssl
import threading

from aiohttp import web


class LoopbackServer:
    def __init__(
        self,
        app: web.Application,
        name: str,
        ssl_context: ssl.SSLContext | None = None,
        handler_cancellation: bool = False,
        host: str = "127.0.0.1",
    ) -> None:
        self.app = app
        self.host = host  # another address only inside a test's own network namespace
        self.name = name
        self.ssl_context = ssl_context
        self.handler_cancellation = handler_cancellation
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> int:
        """Serve, and return the port once it accepts connections."""
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{self.name} did not start")
        return self.port

    def stop(self) -> None:
        """Stop serving; a second call does nothing (a test may stop a server early)."""
        if self._loop and self._runner:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._runner = None
        if self._thread:
            self._thread.join(10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._runner = web.AppRunner(self.app, access_log=None, handler_cancellation=self.handler_cancellation)
        loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=self.ssl_context)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._ready.set()
        loop.run_forever()
