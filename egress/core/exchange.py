"""The vocabulary every stage speaks: one `Exchange` per request, filled in stage by stage.

Nothing here does I/O. Each stage of `gateway.pipeline` reads the fields earlier stages wrote
and writes its own; the audit stage reads them all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from egress.core.approvals import ApprovalNote
from egress.core.capture import Capture
from egress.core.credentials import CredentialClass
from egress.core.errors import EgressError
from egress.core.key_scope import UNSCOPED, CallerKind, KeyScope
from egress.core.provenance import CodeMatch


class Family(StrEnum):
    """A wire family: decides the error shape and which upstream endpoints can serve a request."""

    ANTHROPIC = "anthropic"
    OPENAI = "openai"
    GEMINI = "gemini"


class Api(StrEnum):
    """Which wire API a request speaks. What each one is (routes, codec, restoration,
    translation, stateful ids) is its entry in `egress.wire.apis.APIS`."""

    ANTHROPIC_MESSAGES = "anthropic.messages"
    ANTHROPIC_COUNT_TOKENS = "anthropic.count_tokens"
    OPENAI_CHAT = "openai.chat_completions"
    OPENAI_RESPONSES = "openai.responses"
    OPENAI_RESPONSES_COMPACT = "openai.responses_compact"
    OPENAI_COMPLETIONS = "openai.completions"  # legacy text completions: prompt and suffix
    # Mistral's fill-in-the-middle (Codestral): OpenAI-family errors and model list.
    FIM_COMPLETIONS = "openai.fim_completions"
    # Gemini puts the model, and whether the answer streams, in the path: one member per method.
    GEMINI_GENERATE = "gemini.generate_content"
    GEMINI_STREAM = "gemini.stream_generate_content"
    GEMINI_COUNT_TOKENS = "gemini.count_tokens"

    @property
    def family(self) -> Family:
        """The value's prefix: `anthropic.`, `openai.` or `gemini.`."""
        return Family(self.value.split(".", 1)[0])


class SegmentKind(StrEnum):
    """Where a piece of text sits in a request; detectors and policy may weigh them differently."""

    SYSTEM = "system"
    INSTRUCTIONS = "instructions"
    MESSAGE = "message"
    TOOL_RESULT = "tool_result"
    TOOL_INPUT = "tool_input"
    OTHER = "other"


@dataclass(slots=True)
class TextSegment:
    """One text value of the request. `path` locates it in the JSON document (keys and indexes).

    Not frozen: a request builds dozens of these, and a frozen dataclass's __init__ costs twice as
    much. Treat it as immutable all the same."""

    path: tuple[str | int, ...]
    text: str
    kind: SegmentKind
    json_text: bool = False  # the text is itself JSON (tool-call arguments): values in it are escaped


@dataclass(frozen=True, slots=True)
class Prompt:
    """Every text the client is about to send, in document order. Opaque values are never here.

    `signed`: text the provider signed (Anthropic `thinking`), sent back byte for byte: a value
    in it cannot be masked without breaking the signature. Not among the segments."""

    segments: tuple[TextSegment, ...]
    signed: tuple[str, ...] = ()

    @property
    def chars(self) -> int:
        return sum(len(s.text) for s in self.segments)


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    api: Api
    model: str
    stream: bool
    document: dict[str, Any]
    prompt: Prompt


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking. `key_id` is the gateway key's public id (an OIDC token's jti), never a credential."""

    user: str
    team: str | None
    key_id: str | None
    method: str  # "gateway_key" | "oidc" | "anonymous"
    # A person or a pipeline, and what the credential may do (egress.core.key_scope): checked at
    # the edge (gateway/auth.py) and given to the policy as input.caller.
    kind: CallerKind = CallerKind.PERSON
    scope: KeyScope = UNSCOPED


@dataclass(frozen=True, slots=True)
class ClientInfo:
    name: str  # "claude-code", "codex", "openai-python", … or "unknown"
    user_agent: str | None
    session_id: str | None


class Kind(StrEnum):
    """What a finding is: the unit masking and the policy's kind lists speak in."""

    SECRET = "secret"
    PII = "pii"
    SENSITIVE_FILE = "sensitive_file"
    INTERNAL = "internal"
    PROPRIETARY_CODE = "proprietary_code"  # code of an indexed repository (egress.provenance)


# The kinds masking may be asked to mask (masking.kinds, a decision's `mask`): all but proprietary_code.
MASKABLE_KINDS = (Kind.SECRET, Kind.PII, Kind.SENSITIVE_FILE, Kind.INTERNAL)


class Tier(StrEnum):
    """How sure a finding is. Both tiers are masked; the bundled policy blocks, holds or reroutes
    on `certain` only, unless its settings name `likely` too (docs/detection.md)."""

    CERTAIN = "certain"  # a validated format: prefix, structure, checksum where one exists
    LIKELY = "likely"  # a near-miss vendor token, a generic credential, an encoded one


@dataclass(frozen=True, slots=True)
class Finding:
    """Something sensitive at `text[start:end]` of prompt segment `segment`.

    `preview` is redacted (a known prefix at most, never the value); no value is kept here. For
    a credential found inside encoded text (base64, URL or JSON escapes) the span is the encoded
    text that carries it, so masking replaces that.
    """

    kind: Kind | str  # a Kind, or a kind an organisation's own rule files name
    rule_id: str
    segment: int
    start: int
    end: int
    confidence: float
    severity: str = "medium"  # critical | high | medium | low
    preview: str = ""
    tier: Tier = Tier.CERTAIN
    code: CodeMatch | None = None  # kind proprietary_code: the repository and how much matched


class Action(StrEnum):
    ALLOW = "allow"
    MASK = "mask"
    REROUTE = "reroute"
    REQUIRE_APPROVAL = "require_approval"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    endpoints: tuple[str, ...]  # allowed endpoint names, in preference order
    mask_kinds: tuple[str, ...]
    reasons: tuple[str, ...]
    decision_id: str
    policy_revision: str
    obligations: tuple[str, ...] = ()
    # Shadow mode: the policy's own decision, recorded but not enforced (`self` is then the
    # baseline that was enforced instead).
    shadow_of: Decision | None = None


@dataclass(frozen=True, slots=True)
class MaskedValue:
    """What the audit may know of one masked value: never the value, never its placeholder."""

    kind: str
    rule_id: str
    value_hash: str  # keyed hash (see mask.placeholders.Placeholders.audit_hash)
    occurrences: int


@dataclass(frozen=True, slots=True)
class MaskedRequest:
    """The exact body to send upstream and what is needed to undo the masking in the answer."""

    body: bytes
    placeholders: dict[str, str]  # placeholder -> original value; never leaves the process
    masked_count: int
    values: tuple[MaskedValue, ...] = ()
    rewritten: bool = False  # True when the body had to be re-serialised (see mask.masker)


@dataclass(slots=True)
class Usage:
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None


class Outcome(StrEnum):
    FORWARDED = "forwarded"  # upstream answered (any status) and the answer reached the client
    REFUSED = "refused"  # egress refused before anything was sent upstream
    FAILED = "failed"  # the upstream path failed (unreachable, timeout, broken stream)
    CANCELLED = "cancelled"  # the client went away before the answer was complete


@dataclass(slots=True)
class Exchange:
    """One request's journey. Mutable on purpose: each stage owns the fields it fills."""

    request_id: str
    method: str
    path: str
    query: str
    headers: list[tuple[bytes, bytes]]
    api: Api  # from the route: every request the pipeline sees has one
    started_ns: int = field(default_factory=time.perf_counter_ns)
    started_at: float = field(default_factory=time.time)
    body: bytes = b""
    principal: Principal | None = None
    client: ClientInfo | None = None
    parsed: ParsedRequest | None = None
    findings: tuple[Finding, ...] = ()
    candidates: tuple[str, ...] = ()  # endpoints that could serve the request, before the policy
    decision: Decision | None = None
    masked: MaskedRequest | None = None
    upstream_body: bytes | None = None  # the bytes last sent upstream (masked; translated if so)
    # The upstream's answer as received (still masked), only when the decision obliges recording.
    capture: Capture | None = None
    endpoint_name: str | None = None
    endpoint_jurisdiction: str | None = None
    endpoint_region: str | None = None
    translated_from: Api | None = None  # set when the endpoint answered through API translation
    # The model id the endpoint was asked for, when model mapping made it differ from the client's
    # (`parsed.model`); None when the upstream saw the client's own name.
    upstream_model: str | None = None
    upstream_attempts: int = 0
    upstream_status: int | None = None
    upstream_ns: int = 0  # time spent waiting on or reading from the upstream
    status: int | None = None  # status sent to the client
    bytes_out: int = 0
    usage: Usage = field(default_factory=Usage)
    outcome: Outcome | None = None
    error: EgressError | None = None
    approval: ApprovalNote | None = None  # set only when the decision required an approval
    credential: CredentialClass | None = None  # the client's own provider credential, classified
    # Inbound mTLS: the common name of the client certificate the TLS handshake verified.
    client_cert_cn: str | None = None
    finished_ns: int | None = None

    def header(self, name: bytes) -> bytes | None:
        """First value of a request header; `name` must be lower-case."""
        for key, value in self.headers:
            if key == name:
                return value
        return None
