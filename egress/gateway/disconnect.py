"""Notices a client that hangs up while its request is being answered.

Invariant: once the client has disconnected, the request's task is cancelled (so the upstream
call and its connection stop too), unless the answer is already complete (`disarm`, or the
responder has finished): a client that hangs up after the whole answer cancelled nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any

from egress.gateway.responder import Responder


class DisconnectWatch:
    """Cancels the request's task when the client disconnects, so the upstream call stops too.

    Armed lazily: most answers complete within `delay_s`, and for them no task is ever created
    (a task per request costs CPU and, once cancelled, cyclic garbage). A client that went away
    earlier is still noticed: `receive()` reports a past disconnect at once."""

    delay_s = 0.25

    def __init__(self, receive: Any, task: asyncio.Task[Any] | None, responder: Responder) -> None:
        self.disconnected = False
        self._receive: Any = receive
        self._target = task
        self._responder: Responder | None = responder
        self._task: asyncio.Task[None] | None = None
        self._handle: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(self.delay_s, self._start)

    def _start(self) -> None:
        self._handle = None
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            receive = self._receive
            if receive is None:
                return
            message = await receive()
            if message["type"] == "http.disconnect":
                break
        responder = self._responder
        if self._target is not None and responder is not None and not responder.finished:
            self.disconnected = True
            self._target.cancel()

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        # Drop the references that would otherwise form a cycle through the task.
        self._target = None
        self._receive = None
        self._responder = None
