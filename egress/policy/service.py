"""The decide stage's service: ask the engine, bound it in time, cache, shadow, reload.

Invariants:
- fail closed: an engine error, a timeout or a malformed answer is a deny with a code
  (`policy_unavailable`, `policy_invalid`), never a silent allow. Only in global shadow mode,
  where the policy is by definition not enforced, does a failure fall back to the baseline;
- a cached decision is only ever served for the identical input document under the identical
  policy revision (the key is both), so caching never changes what is decided;
- a reload that fails leaves the running policy in place.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson

from egress.core.endpoint import Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Decision
from egress.policy.decide import AllowServingEndpoints, PolicyEngine, validate, wants_shadow
from egress.policy.rego import PolicyEvaluationError
from egress.policy.remote import RemoteOpaError
from egress.policy.settings import PolicySettings

log = logging.getLogger("egress.policy")


class DecisionCache:
    """Bounded LRU of validated decisions by (revision, canonical input)."""

    def __init__(self, entries: int, ttl_s: float | None) -> None:
        self.entries = entries
        self.ttl_s = ttl_s
        self._items: OrderedDict[bytes, tuple[Decision, float]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> Decision | None:
        item = self._items.get(key)
        if item is None or (self.ttl_s is not None and item[1] < time.monotonic()):
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item[0]

    def put(self, key: bytes, decision: Decision) -> None:
        if self.entries <= 0:
            return
        expires = time.monotonic() + self.ttl_s if self.ttl_s is not None else float("inf")
        self._items[key] = (decision, expires)
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()


class PolicyService:
    def __init__(
        self,
        engine: PolicyEngine,
        settings: PolicySettings,
        baseline: AllowServingEndpoints,
        loader: Callable[[], PolicyEngine] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.baseline = baseline
        self._loader = loader
        self.cache = DecisionCache(settings.cache_entries, settings.decision_ttl_s)

    @property
    def revision(self) -> str:
        return self.engine.revision

    def reload(self) -> str:
        """Build the policy again from its sources; on success swap it in and drop the cache.
        Raises (keeping the current policy) when the new one does not load."""
        if self._loader is None:
            return self.engine.revision
        fresh = self._loader()
        old, self.engine = self.engine, fresh
        self.cache.clear()
        old.close()
        log.info("policy reloaded: revision %s", fresh.revision)
        return fresh.revision

    def close(self) -> None:
        self.engine.close()

    async def decide(self, document: dict[str, Any], candidates: tuple[Endpoint, ...], decision_id: str) -> Decision:
        engine = self.engine  # one engine for the whole decision, even if a reload swaps it meanwhile
        key = engine.revision.encode() + b"\0" + orjson.dumps(document, option=orjson.OPT_SORT_KEYS)
        cached = self.cache.get(key)
        if cached is not None:
            return dataclasses.replace(cached, decision_id=decision_id)
        try:
            raw = await self._evaluate(engine, document)
            decision = validate(raw, candidates, engine.revision, decision_id, self.baseline.mask_kinds)
        except EgressError as err:
            if not self.settings.shadow:
                raise
            # Global shadow: the policy is not enforced, so its failure is recorded, not imposed.
            log.warning("shadow policy failed (%s): enforcing the baseline", err.code.value)
            return self._baseline(document, candidates, decision_id, None, err.message)
        if self.settings.shadow or wants_shadow(raw):
            decision = self._baseline(document, candidates, decision_id, decision, None)
        self.cache.put(key, decision)
        return decision

    async def _evaluate(self, engine: PolicyEngine, document: dict[str, Any]) -> Any:
        timeout = self.settings.timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await engine.evaluate(document)
        except TimeoutError:
            raise EgressError(
                ErrorCode.POLICY_UNAVAILABLE,
                f"the policy engine did not decide within {timeout * 1000:g} ms; the request was not sent",
                stage="decide",
            ) from None
        except (PolicyEvaluationError, RemoteOpaError) as exc:
            raise EgressError(
                ErrorCode.POLICY_UNAVAILABLE, f"the policy engine failed: {exc}; the request was not sent", stage="decide"
            ) from None

    def _baseline(
        self,
        document: dict[str, Any],
        candidates: tuple[Endpoint, ...],
        decision_id: str,
        shadowed: Decision | None,
        failure: str | None,
    ) -> Decision:
        enforced = validate(self.baseline.decide_now(document), candidates, self.baseline.revision, decision_id)
        note = f"shadow mode: the policy's decision ({shadowed.action.value}) was recorded, not enforced" if shadowed else ""
        if failure:
            note = f"shadow mode: the policy failed ({failure}); not enforced"
        return dataclasses.replace(enforced, reasons=(*enforced.reasons, note), shadow_of=shadowed)
