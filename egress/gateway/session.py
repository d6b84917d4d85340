"""The state a conversation carries from one request to the next: the placeholder maps.

Two kinds, both keyed by the authenticated user (one user never sees another's):
- the session vault: an OpenAI Responses answer the provider keeps (`store` not false) can be
  continued with `previous_response_id`, so the placeholders sent with it are saved under the
  answer's id and inherited by the follow-up (restorable in its answer);
- the session ledger: a value masked earlier in the same agent session gets the same placeholder
  again, so the provider's prompt cache sees the same bytes.

Invariants: the vault is read and written on its own thread, never on the event loop, and within
`vault.timeout_s`; a vault that cannot be read refuses the request (fail closed: its inherited
placeholders would otherwise reach the client unrestored); a failed write is logged, never
fails the answer already on its way.

With `redis.url`, the ledger is shared by all replicas (egress/shared/ledger.py): its read and
its write are awaited on the request path, and a Redis that does not answer refuses a request that
has a session id with a native 503 (gateway_not_ready) before anything is sent: a value another
replica remembered would otherwise leave in clear here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Exchange
from egress.mask.ledger import SessionLedger
from egress.mask.vault import SessionVault
from egress.shared.client import HotStateDown, Round, Slot
from egress.shared.ledger import SharedLedger
from egress.wire.apis import APIS

log = logging.getLogger("egress.gateway")


class Sessions:
    def __init__(
        self, vault: SessionVault | None, ledger: SessionLedger | None, shared: SharedLedger | None = None
    ) -> None:
        self.vault = vault
        self.ledger = ledger
        self.shared = shared  # the replicas' ledger on Redis (replaces `ledger` when set)
        # One thread for the vault's store calls: they never run on the event loop.
        self._vault_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egress-vault")

    def close(self) -> None:
        self._vault_thread.shutdown(wait=True)

    async def purge(self) -> int:
        """Delete the vault's expired entries; how many."""
        if self.vault is None:
            return 0
        return await asyncio.get_running_loop().run_in_executor(self._vault_thread, self.vault.purge)

    # --- the ledger: the same value, the same placeholder, within an agent session --------------

    def queue_known(self, x: Exchange, round_: Round) -> Slot | None:
        """Queue the shared ledger's read in the request's round, which the rate limits share
        (one pipelined round trip for both; gateway/pipeline.py). None: nothing to read."""
        session = x.client.session_id if x.client is not None else None
        if self.shared is None or not session:
            return None
        return self.shared.queue_read(round_, owner(x), session)

    async def known(self, x: Exchange, prefetched: Slot | None = None) -> Mapping[str, str] | None:
        """Value -> placeholder masked earlier in this agent session (None: no ledger).
        `prefetched`: the read `queue_known` queued, in a round that ran (else it is read now)."""
        session = x.client.session_id if x.client is not None else None
        if self.shared is not None:
            if not session:
                return None
            try:
                if prefetched is not None:
                    return await self.shared.finish_read(prefetched, owner(x), session)
                return await self.shared.known(owner(x), session)
            except HotStateDown as exc:
                raise _ledger_down() from exc
        if self.ledger is None:
            return None
        return self.ledger.known(owner(x), session)

    async def note_masked(self, x: Exchange, known: Mapping[str, str] | None) -> None:
        """Keep this request's placeholders for the session's next requests (on any replica:
        published before the request is forwarded)."""
        if x.masked is None or not x.masked.placeholders:
            return
        session = x.client.session_id if x.client is not None else None
        if self.shared is not None:
            if not session:
                return
            try:
                await self.shared.remember(owner(x), session, x.masked.placeholders, known or {})
            except HotStateDown as exc:
                raise _ledger_down() from exc
        elif self.ledger is not None:
            self.ledger.remember(owner(x), session, x.masked.placeholders)

    # --- the vault: stateful conversations (previous_response_id) ----------------------------

    def stateful(self, x: Exchange) -> bool:
        """An answer the provider keeps (Responses: store defaults to true) can be continued by its
        id (previous_response_id), so its placeholder map must outlive this request."""
        ids = APIS[x.api].stateful
        return self.vault is not None and ids is not None and x.parsed is not None and ids.kept(x.parsed.document)

    async def inherited(self, x: Exchange) -> Mapping[str, str] | None:
        """The placeholders of the answer this request continues (None: it continues none)."""
        assert x.parsed is not None
        ids = APIS[x.api].stateful
        previous = ids.continues(x.parsed.document) if ids is not None else None
        if self.vault is None or previous is None:
            return None
        loop = asyncio.get_running_loop()
        try:
            read = loop.run_in_executor(self._vault_thread, self.vault.load, previous, owner(x))
            return await asyncio.wait_for(read, self.vault.timeout_s)  # a locked store cannot hold the request
        except Exception as exc:  # noqa: BLE001 - the fail-closed boundary of the vault read
            log.error("vault read failed: %s", type(exc).__name__)
            raise EgressError(
                ErrorCode.STAGE_FAILED, "the session vault could not be read; the request was not sent", stage="mask"
            ) from exc

    async def remember(self, x: Exchange, response_id: str, placeholders: Mapping[str, str]) -> None:
        """Save the placeholders sent with a stateful answer under its id."""
        assert self.vault is not None
        loop = asyncio.get_running_loop()
        try:
            write = loop.run_in_executor(self._vault_thread, self.vault.save, response_id, owner(x), placeholders)
            await asyncio.wait_for(write, self.vault.timeout_s)  # a locked store cannot hold the answer
        except Exception as exc:  # noqa: BLE001 - the answer is already on its way; log, never fail it
            log.error("vault write failed for a stateful answer: %s", type(exc).__name__)


def _ledger_down() -> EgressError:
    return EgressError(
        ErrorCode.GATEWAY_NOT_READY,
        "the shared session ledger does not answer; nothing was sent, retry later",
        stage="mask",
    )


def owner(x: Exchange) -> str:
    """Whose stateful conversation this is: the authenticated user."""
    return x.principal.user if x.principal is not None else ""


def response_id(x: Exchange, body: bytes) -> str | None:
    """The id of a whole (not streamed) answer, which a follow-up names to continue it."""
    ids = APIS[x.api].stateful
    return ids.answer_id(body) if ids is not None else None
