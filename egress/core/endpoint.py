"""A provider endpoint: where a request may go, and the facts the policy weighs about it.

Vocabulary shared by routing, policy and audit; the catalog that holds them lives in `route`.
"""

from __future__ import annotations

import fnmatch
import re
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

_JURISDICTION = re.compile(r"^(?:[A-Z]{2}|EU|self)$")


class WireApi(StrEnum):
    """What an endpoint speaks (its `api:`). Which client APIs that answers, directly or through
    translation, is each API's entry in `egress.wire.apis` (`spoken_by`, `translation`): a
    Chat-only server (llama.cpp, vLLM, Ollama) answers Messages and Responses requests only
    through translation."""

    ANTHROPIC = "anthropic"  # Messages and count_tokens
    OPENAI = "openai"  # Chat Completions, Responses and legacy completions
    # Chat Completions and legacy completions: the OpenAI-compatible servers (llama.cpp, vLLM,
    # Ollama) serve both; one that does not answers /completions with its own 404.
    OPENAI_CHAT = "openai-chat"
    MISTRAL = "mistral"  # Mistral's API: Chat Completions and fill-in-the-middle (Codestral)
    GEMINI = "gemini"  # Google AI Studio's Gemini API: generateContent, streamGenerateContent, countTokens
    # Anthropic models on the clouds' own APIs (egress.route.clouds): the client speaks Messages.
    BEDROCK = "bedrock"  # Amazon Bedrock InvokeModel / InvokeModelWithResponseStream (SigV4 or API key)
    VERTEX = "vertex"  # Google Vertex AI rawPredict / streamRawPredict (OAuth2 access tokens)
    VERTEX_GEMINI = "vertex-gemini"  # Gemini on Vertex AI: generateContent, streamGenerateContent (OAuth2)


class Credentials(BaseModel):
    """How egress authenticates upstream: a key from the environment, the client's own, or none
    at all (an auth-free self-hosted server: `credentials: none`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    env: str | None = Field(default=None, description="environment variable holding the upstream key")
    passthrough: bool = Field(default=False, description="forward the client's own provider credential")
    none: bool = Field(
        default=False,
        description="send no credential: the client's credential headers and cookies are never forwarded",
    )
    header: str | None = Field(default=None, description="header carrying the key (default by API)")
    chain: bool = Field(
        default=False,
        description="the cloud's own credential chain: AWS's (botocore: environment, profile, SSO, role) "
        "signing with SigV4 for `api: bedrock`; Application Default Credentials for `api: vertex`",
    )
    key_file: str | None = Field(
        default=None, description="a Google service-account key file (JSON) for `api: vertex`"
    )
    # Filled in once, by config loading, from `env`. Never logged, never audited.
    api_key: SecretStr | None = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _none_shorthand(cls, value: object) -> object:
        """`credentials: none` (the YAML string) is `{none: true}`."""
        if isinstance(value, str) and value.strip().lower() == "none":
            return {"none": True}
        return value

    @model_validator(mode="after")
    def _one_source(self) -> Credentials:
        if (self.env is not None) + self.passthrough + self.none + self.chain + (self.key_file is not None) != 1:
            raise ValueError(
                "set exactly one of `env` (an environment variable name), `passthrough: true`, "
                "`credentials: none` (an auth-free server), `chain: true` (a cloud's own credential chain) "
                "or `key_file` (a Google service-account key file)"
            )
        if (self.none or self.chain or self.key_file is not None) and self.header is not None:
            raise ValueError("`header` names where a key goes: it has no meaning with `none`, `chain` or `key_file`")
        return self


class Endpoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    api: WireApi
    base_url: str
    models: tuple[str, ...] = Field(min_length=1, description="model name patterns (shell globs)")
    credentials: Credentials
    operator: str
    jurisdiction: str = Field(description="ISO 3166 alpha-2 country code, EU, or self")
    region: str
    retention_days: int = Field(ge=0)
    trains_on_api_data: bool
    dpa: bool
    certifications: tuple[str, ...] = ()
    zero_data_retention: bool = False
    headers: dict[str, str] = Field(default_factory=dict, description="static headers added upstream")
    query: dict[str, str] = Field(default_factory=dict, description="query parameters added upstream")
    source: str | None = None
    as_of: str | None = None
    # Facts a provider catalog entry brings (`egress.route.provider_catalog`); None means unknown.
    catalog: str | None = Field(default=None, description="the catalog entry this endpoint instantiates")
    default_inference_location: str | None = Field(default=None, description="where inference runs by default")
    region_pinning: bool | None = Field(default=None, description="inference can be pinned to the region")
    open_weights: bool = False
    government_access: tuple[str, ...] = Field(default=(), description="laws under which the operator can be compelled")
    # The operator's own jurisdiction, apart from where the data is processed (`jurisdiction`): a
    # US operator's EU region is EU for the data, US for who can compel the operator.
    operator_jurisdiction: str | None = Field(
        default=None, description="ISO 3166 alpha-2 code (or EU, self) of the operator's home law; None: unknown"
    )
    # Model mapping (egress.route.model_map): the upstream's own id for the client's model name, on
    # every endpoint, translated or not. The client still sees its own name in the answer.
    model_map: dict[str, str] = Field(
        default_factory=dict,
        description="client model name or shell glob -> upstream model id (exact names first, then globs in order)",
    )
    upstream_model: str | None = Field(
        default=None,
        min_length=1,
        description="model id sent upstream for every model not in model_map (e.g. a self-hosted server's one model)",
    )
    system_in_user: bool = Field(
        default=False,
        description="through translation, put the system prompt at the top of the first user message "
        "(for chat templates that drop system messages, e.g. llama-cpp-python's gemma format)",
    )
    connect_timeout_s: float | None = Field(default=None, gt=0, description="overrides upstream.connect_timeout_s")
    read_timeout_s: float | None = Field(
        default=None, gt=0, description="overrides upstream.read_timeout_s: the longest silence before failing over"
    )
    tls_ca_bundle: str | None = Field(
        default=None, description="CA file that verifies this endpoint's certificate, instead of upstream.ca_bundle"
    )
    max_output_tokens: int | None = Field(
        default=None,
        ge=1,
        description="cap on the output tokens asked of this endpoint when egress translates a request to it "
        "(Claude Code asks for 32,000; a self-hosted server refuses more than its context holds)",
    )

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an absolute http:// or https:// URL")
        if "@" in value.split("://", 1)[1].split("/", 1)[0]:
            # A URL is printed, logged and compared; a credential in it would travel with it.
            raise ValueError("must not hold a user or password: put the credential in `credentials` (or `headers`)")
        return value.rstrip("/")

    @field_validator("jurisdiction", "operator_jurisdiction")
    @classmethod
    def _jurisdiction(cls, value: str | None) -> str | None:
        if value is not None and not _JURISDICTION.match(value):
            raise ValueError("must be an ISO 3166 alpha-2 code (e.g. US, FR), EU, or self")
        return value

    @field_validator("model_map")
    @classmethod
    def _model_map(cls, value: dict[str, str]) -> dict[str, str]:
        if empty := [k for k, v in value.items() if not k or not v]:
            raise ValueError(f"model names and upstream ids must not be empty: {empty}")
        return value

    @model_validator(mode="after")
    def _cloud_credentials(self) -> Endpoint:
        """`chain` is a cloud's own credential chain and `key_file` a Google service account."""
        if self.credentials.chain and self.api not in (WireApi.BEDROCK, WireApi.VERTEX, WireApi.VERTEX_GEMINI):
            raise ValueError(
                "credentials `chain: true` is for `api: bedrock` (AWS), `api: vertex` or `api: vertex-gemini` (Google)"
            )
        if self.credentials.key_file is not None and self.api not in (WireApi.VERTEX, WireApi.VERTEX_GEMINI):
            raise ValueError(
                "credentials `key_file` (a Google service account) is for `api: vertex` or `api: vertex-gemini`"
            )
        return self

    @property
    def self_hosted(self) -> bool:
        return self.jurisdiction == "self"

    def serves(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.models)

    def listed_models(self) -> list[str]:
        """Model names spelled out in full (patterns without wildcards), for /v1/models."""
        return [m for m in self.models if not any(ch in m for ch in "*?[")]
