"""Which terms a client's own provider credential falls under, from its documented format alone.

With pass-through credentials (`credentials: {passthrough: true}`) the client's credential is
forwarded, and the same host answers an API key (API terms: no training, bounded retention, a
DPA) and a person's subscription sign-in (consumer terms: data may be used for training, no
DPA). This module reads what the client sent, never calling the provider:

| what the client sends                                       | type                          | plan |
|-------------------------------------------------------------|-------------------------------|------|
| `sk-ant-api03-…` (x-api-key or Bearer)                      | anthropic_api_key             | api |
| `sk-ant-admin01-…`                                          | anthropic_admin_key           | api |
| `sk-ant-oat01-…` Bearer (Claude subscription sign-in; Claude Code adds `anthropic-beta: oauth-…`) | anthropic_oauth | consumer |
| `sk-proj-…`, `sk-svcacct-…`, `sk-admin-…`, `sk-…`           | openai_{project,service_account,admin,user}_key | api |
| a JWT Bearer with `chatgpt-account-id`, or whose claims carry `https://api.openai.com/auth` (ChatGPT sign-in, as Codex CLI forwards it) | chatgpt_oauth | consumer; enterprise when its `chatgpt_plan_type` is team, business, enterprise or edu |
| `AIza…` (x-goog-api-key, `?key=`, or Bearer)                | gemini_api_key                | api |
| `ya29.…` Bearer (a Google account's OAuth access token)     | google_oauth                  | consumer |
| an Azure OpenAI `api-key` (32 hex characters)               | azure_openai_key              | api |
| anything else                                               | unrecognised                  | unknown |

Invariants:
- Nothing here keeps, logs or returns any part of a credential: a class is a label and facts.
- The header that carried the gateway's own credential (a gateway key or OIDC token) is not the
  provider's and is skipped.
- Several provider credentials in one request: the most restrictive class wins (consumer, then
  unknown, then enterprise, then api), so adding a header can never loosen the terms.
- A subscription token does not say which subscription it belongs to (a Claude Team seat and a
  Pro seat look alike; so do a Workspace and a personal Google account): those are consumer, the
  stricter reading. A ChatGPT token's plan claim is read unverified: a forged one is refused by
  OpenAI, so it cannot carry a request under terms it does not have.
"""

from __future__ import annotations

import base64
import binascii
import importlib.resources
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field

from egress.core.credentials import CredentialClass, Plan, PlanFacts

# The most restrictive first: with several credentials the first of these present wins.
_SEVERITY = (Plan.CONSUMER, Plan.UNKNOWN, Plan.ENTERPRISE, Plan.API)
# ChatGPT workspace plans whose terms are the business ones (no training by default, a DPA).
_CHATGPT_BUSINESS = frozenset({"team", "business", "enterprise", "edu"})
_OPENAI_AUTH_CLAIM = "https://api.openai.com/auth"
_MAX_JWT_BYTES = 16_384  # a larger bearer is not read as a token
_AZURE_KEY = re.compile(rb"[0-9a-fA-F]{32}|[0-9A-Za-z]{84}")
_CREDENTIAL_HEADERS = (b"x-api-key", b"authorization", b"x-goog-api-key", b"api-key")


class PlanEntry(BaseModel):
    """One item of `plans:` in catalog.yaml: a provider's plan and its terms, with the source."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    provider: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    plan: Plan
    title: str
    trains_on_data: bool | None
    retention_days: int | None = Field(ge=0)
    dpa: bool | None
    source: str = Field(pattern=r"^https://")
    as_of: str = Field(pattern=r"^\d{4}-\d{2}-\d{2}$")
    notes: str | None = None

    def facts(self) -> PlanFacts:
        return PlanFacts(
            trains_on_data=self.trains_on_data, retention_days=self.retention_days, dpa=self.dpa, source=self.source
        )


def parse_plans(raw: Any) -> dict[tuple[str, Plan], PlanEntry]:
    """The `plans:` list, by (provider, plan). Raises ValueError (pydantic's) on a bad item or a duplicate."""
    entries = [PlanEntry.model_validate(item) for item in (raw or [])]
    table: dict[tuple[str, Plan], PlanEntry] = {}
    for entry in entries:
        key = (entry.provider, entry.plan)
        if key in table:
            raise ValueError(f"plans: {entry.provider} {entry.plan.value} is listed twice")
        table[key] = entry
    return table


def bundled_plans() -> dict[tuple[str, Plan], PlanEntry]:
    """The bundled catalog's `plans:` section (read once, when the gateway is built)."""
    text = (importlib.resources.files("egress") / "defaults" / "catalog.yaml").read_text()
    return parse_plans(yaml.safe_load(text).get("plans"))


class CredentialClassifier:
    """Classifies the client's own provider credential; facts from the catalog's `plans:`."""

    def __init__(self, plans: Mapping[tuple[str, Plan], PlanEntry]) -> None:
        self._facts = {key: entry.facts() for key, entry in plans.items()}

    def classify(self, headers: list[tuple[bytes, bytes]], query: str, skip: bytes | None) -> CredentialClass | None:
        """The class of the provider credential the request carries (None: it carries none).
        `skip` is the header that carried the gateway's own credential."""
        found: list[tuple[Plan, str, str | None]] = []
        account_header = False
        oauth_beta = False
        for name, value in headers:
            if name == b"chatgpt-account-id":
                account_header = True
            elif name == b"anthropic-beta" and b"oauth-" in value:
                oauth_beta = True
        for name, value in headers:
            if name == skip or name not in _CREDENTIAL_HEADERS:
                continue
            token = value.strip()
            if name == b"authorization":
                if token[:7].lower() != b"bearer ":
                    found.append((Plan.UNKNOWN, "unrecognised", None))
                    continue
                token = token[7:].strip()
            found.append(_classify_token(name, token, account_header, oauth_beta))
        if query and "key=" in query:
            for param, given in parse_qsl(query, keep_blank_values=True):
                if param == "key" and given:
                    found.append(_classify_token(b"key", given.encode("latin-1", "replace"), False, False))
        if not found:
            return None
        plan, kind, provider = min(found, key=lambda item: _SEVERITY.index(item[0]))
        facts = self._facts.get((provider, plan)) if provider is not None else None
        return CredentialClass(plan=plan, type=kind, provider=provider, facts=facts)


def _classify_token(
    header: bytes, token: bytes, account_header: bool, oauth_beta: bool
) -> tuple[Plan, str, str | None]:
    """(plan, type, provider) of one credential value, from its documented shape."""
    if token.startswith(b"sk-ant-"):
        if token.startswith(b"sk-ant-oat"):
            # A Claude subscription sign-in (Claude Code sends it with anthropic-beta: oauth-…);
            # in any header it is the same token, under the same terms.
            return Plan.CONSUMER, "anthropic_oauth", "anthropic"
        if token.startswith(b"sk-ant-api"):
            return Plan.API, "anthropic_api_key", "anthropic"
        if token.startswith(b"sk-ant-admin"):
            return Plan.API, "anthropic_admin_key", "anthropic"
        return Plan.UNKNOWN, "anthropic_unrecognised", "anthropic"
    if token.startswith(b"sk-"):
        if token.startswith(b"sk-proj-"):
            return Plan.API, "openai_project_key", "openai"
        if token.startswith(b"sk-svcacct-"):
            return Plan.API, "openai_service_account_key", "openai"
        if token.startswith(b"sk-admin-"):
            return Plan.API, "openai_admin_key", "openai"
        return Plan.API, "openai_user_key", "openai"
    if token.startswith(b"AIza"):
        return Plan.API, "gemini_api_key", "google"
    if token.startswith(b"ya29."):
        return Plan.CONSUMER, "google_oauth", "google"
    if token.count(b".") == 2 and len(token) <= _MAX_JWT_BYTES:
        claims = _unverified_claims(token)
        auth = claims.get(_OPENAI_AUTH_CLAIM) if claims is not None else None
        if account_header or isinstance(auth, dict):
            plan_type = auth.get("chatgpt_plan_type") if isinstance(auth, dict) else None
            if isinstance(plan_type, str) and plan_type.lower() in _CHATGPT_BUSINESS:
                return Plan.ENTERPRISE, "chatgpt_oauth", "openai"
            return Plan.CONSUMER, "chatgpt_oauth", "openai"
    if header == b"api-key" and _AZURE_KEY.fullmatch(token):
        return Plan.API, "azure_openai_key", "azure-openai"
    return Plan.UNKNOWN, "unrecognised", None


def _unverified_claims(token: bytes) -> dict[str, Any] | None:
    """A JWT's payload, unverified (only to read which plan it claims); None if it is not one."""
    try:
        payload = token.split(b".")[1]
        decoded = orjson.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        return None
    return decoded if isinstance(decoded, dict) else None
