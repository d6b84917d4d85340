"""Configuration: the only module that reads configuration files and the environment.

It is read once, validated into frozen models, and passed down; nothing below reads a file or an
environment variable on its own. Errors name the file, the key path, its line, and what is wrong.

Each section of the file is typed as the settings type of the package that reads it
(`egress/<package>/settings.py`, where its defaults are defined, once); `Config` adds what spans
sections (the data directory, the providers and their catalog) and the checks that read files or
the environment.
"""

from __future__ import annotations

import importlib.resources
import os
import ssl
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from egress.admin.settings import ConsoleSettings
from egress.approve.settings import ApprovalSettings
from egress.audit.settings import AuditSettings
from egress.core.endpoint import Endpoint
from egress.core.exchange import MASKABLE_KINDS, Tier
from egress.core.jurisdictions import ISO_3166_ALPHA2, SPECIAL_JURISDICTIONS
from egress.core.obligations import OBLIGATIONS
from egress.detect.compiled_cache import default_cache_dir
from egress.detect.internal import internal_rules
from egress.detect.rules import NEAR_MISS_RULE_ID, RuleError, bundled_files, load_rule_files
from egress.detect.settings import DetectionSettings
from egress.gateway.settings import AuthSettings, ServerSettings
from egress.limits.settings import LimitsSettings
from egress.lockdown.settings import LockdownSettings
from egress.mask.settings import MaskingSettings
from egress.policy import data_schema
from egress.policy.settings import PolicySettings
from egress.recording.settings import RecordingSettings
from egress.route.catalog import Catalog
from egress.route.clouds.profiles import check_endpoints as check_profiles
from egress.route.provider_catalog import (
    CatalogEntry,
    CatalogError,
    ProviderCatalog,
    instantiate,
    parse_catalog,
    patched_entry,
)
from egress.route.settings import UpstreamSettings
from egress.shared.settings import RedisSettings
from egress.siem.settings import SiemSettings
from egress.store.settings import StoreSettings
from egress.telemetry.settings import LoggingSettings, MetricsSettings, OrganisationSettings, TracingSettings

ENV_CONFIG = "EGRESS_CONFIG"
ENV_DATA_DIR = "EGRESS_DATA_DIR"


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    server: ServerSettings = ServerSettings()
    data_dir: Path | None = None
    store: StoreSettings = StoreSettings()
    auth: AuthSettings = AuthSettings()
    upstream: UpstreamSettings = UpstreamSettings()
    audit: AuditSettings = AuditSettings()
    detection: DetectionSettings = DetectionSettings()
    masking: MaskingSettings = MaskingSettings()
    policy: PolicySettings = PolicySettings()
    approvals: ApprovalSettings = ApprovalSettings()
    recording: RecordingSettings = RecordingSettings()
    console: ConsoleSettings = ConsoleSettings()
    organisation: OrganisationSettings = OrganisationSettings()
    metrics: MetricsSettings = MetricsSettings()
    tracing: TracingSettings = TracingSettings()
    logging: LoggingSettings = LoggingSettings()
    lockdown: LockdownSettings = LockdownSettings()
    siem: SiemSettings = SiemSettings()  # audit delivery to SIEMs (docs/siem.md)
    limits: LimitsSettings = LimitsSettings()  # rate limits and budgets per key, user, team (docs/limits.md)
    redis: RedisSettings = RedisSettings()  # the replicas' shared hot state (docs/scaling.md)
    providers: tuple[Endpoint, ...]
    # Read once by load_config from detection.rules: (path, text) pairs.
    rule_files: tuple[tuple[str, str], ...] = Field(default=(), exclude=True)
    # Set once by load_config: the bundled provider catalog with the file's `catalog:` entries.
    provider_catalog: ProviderCatalog = Field(default=ProviderCatalog(version=""), exclude=True)
    # Set once by load_config: what it could not check, or that has no effect ("file:line: key: why").
    warnings: tuple[str, ...] = Field(default=(), exclude=True)

    @field_validator("providers")
    @classmethod
    def _unique(cls, value: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
        if not value:
            raise ValueError("at least one provider endpoint is required")
        Catalog(value)  # raises on duplicate names
        check_profiles(value)  # a Bedrock inference profile's geography is the endpoint's jurisdiction
        return value

    @property
    def resolved_data_dir(self) -> Path:
        assert self.data_dir is not None, "load_config() always sets data_dir"
        return self.data_dir

    @property
    def masking_key_file(self) -> Path:
        return self.masking.key_file or self.resolved_data_dir / "masking.key"

    @property
    def audit_signing_key_file(self) -> Path:
        return self.audit.signing_key_file or self.resolved_data_dir / "audit-signing.key"

    @property
    def audit_checkpoint_log(self) -> Path:
        return self.audit.checkpoint_log or self.resolved_data_dir / "audit-checkpoints.jsonl"

    @property
    def recording_key_file(self) -> Path:
        return self.recording.key_file or self.resolved_data_dir / "recording.key"

    @property
    def public_base_url(self) -> str:
        """The URL clients and approvers reach this gateway at (links to approvals)."""
        server = self.server
        if server.public_url:
            return server.public_url.rstrip("/")
        host = "127.0.0.1" if server.host in ("0.0.0.0", "::") else server.host
        scheme = "https" if server.tls_cert_file else "http"
        return f"{scheme}://{host}:{server.port}"

    @property
    def store_url(self) -> str:
        return self.store.url or f"sqlite:///{self.resolved_data_dir / 'egress.db'}"


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    location: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.location or '(top level)'}: {self.message}"


class ConfigError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def default_data_dir(env: Mapping[str, str]) -> Path:
    if env.get(ENV_DATA_DIR):
        return Path(env[ENV_DATA_DIR]).expanduser()
    base = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".local" / "share")
    return Path(base) / "egress"


def _bundled_text() -> str:
    return (importlib.resources.files("egress") / "defaults" / "egress.yaml").read_text()


def load_config(
    path: Path | None = None, env: Mapping[str, str] | None = None, *, require_env: bool = True, **overrides: Any
) -> Config:
    """Read, validate and resolve the configuration.

    `path` None means: $EGRESS_CONFIG if set, else the embedded defaults. Keys missing from a
    file take the embedded defaults' values, except `providers`, which a file replaces whole.
    `overrides` (from command-line flags) set `server` keys. `require_env` False (`config check
    --no-env`) leaves credentials named by an unset environment variable unresolved (api_key None)
    instead of refusing them: such a Config is for checking, never for serving.
    """
    env = dict(os.environ) if env is None else dict(env)
    if path is None and env.get(ENV_CONFIG):
        path = Path(env[ENV_CONFIG])
    bundled = yaml.safe_load(_bundled_text())
    if path is None:
        name, text, data = "<embedded defaults>", _bundled_text(), bundled
    else:
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError([Problem(name, "", None, f"cannot read the file: {exc.strerror}")]) from None
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise ConfigError([Problem(name, "", mark.line + 1 if mark else None, f"not valid YAML: {exc}")]) from None
        if not isinstance(data, dict):
            raise ConfigError([Problem(name, "", 1, "the top level must be a mapping of keys")])
        data = _with_defaults(data, bundled)
    server = dict(data.get("server") or {})
    server.update({k: v for k, v in overrides.items() if v is not None})
    data["server"] = server
    if data.get("data_dir") is None:
        data["data_dir"] = str(default_data_dir(env))
    detection = data.get("detection")
    if detection is None or (isinstance(detection, dict) and detection.get("cache_dir") is None):
        data["detection"] = {**(detection or {}), "cache_dir": str(default_cache_dir(env))}
    data, catalog = _with_catalog(name, text, data)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(name, text, exc)) from None
    config = config.model_copy(update={"provider_catalog": catalog})
    config = _resolve_credentials(config, name, text, env, require_env)
    config = _resolve_console_secret(config, name, text, env, require_env)
    config = _resolve_policy_files(config, name)
    _check_tls_files(config, name, text)
    config = _read_rule_files(config, name, text)
    return _check_policy_data(config, name, text)


def _check_tls_files(config: Config, name: str, text: str) -> None:
    """Certificates, keys and CA bundles must be readable now, not at the first handshake; the
    server's certificate and key must load together."""
    oidc = config.auth.oidc
    files: list[tuple[tuple[str | int, ...], str | Path | None]] = [
        (("server", "tls_cert_file"), config.server.tls_cert_file),
        (("server", "tls_key_file"), config.server.tls_key_file),
        (("upstream", "ca_bundle"), config.upstream.ca_bundle),
        (("upstream", "client_cert"), config.upstream.client_cert),
        (("upstream", "client_key"), config.upstream.client_key),
        (("auth", "oidc", "ca_bundle"), oidc.ca_bundle if oidc else None),
    ]
    files += [(("providers", i, "tls_ca_bundle"), e.tls_ca_bundle) for i, e in enumerate(config.providers)]
    problems: list[Problem] = []
    for loc, path in files:
        if path is None:
            continue
        try:
            Path(path).read_bytes()
        except OSError as exc:
            problems.append(Problem(name, _dotted(loc), _line_of(text, loc), f"cannot read {path}: {exc.strerror}"))
    server = config.server
    if not problems and server.tls_cert_file is not None and server.tls_key_file is not None:
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(server.tls_cert_file, server.tls_key_file)
        except ssl.SSLError as exc:
            loc = ("server", "tls_cert_file")
            message = f"the certificate and key do not load together ({exc.reason or exc})"
            problems.append(Problem(name, _dotted(loc), _line_of(text, loc), message))
    if problems:
        raise ConfigError(problems)


def _resolve_policy_files(config: Config, name: str) -> Config:
    """Policy paths are relative to the configuration file (read at start and on each reload)."""
    if not config.policy.files:
        return config
    base = Path(name).parent if name != "<embedded defaults>" else Path.cwd()
    files = tuple(p if p.is_absolute() else base / p for p in config.policy.files)
    return config.model_copy(update={"policy": config.policy.model_copy(update={"files": files})})


def _read_rule_files(config: Config, name: str, text: str) -> Config:
    problems: list[Problem] = []
    files: list[tuple[str, str]] = []
    base = Path(name).parent if name != "<embedded defaults>" else Path.cwd()
    for i, path in enumerate(config.detection.rules):
        full = path if path.is_absolute() else base / path
        loc = ("detection", "rules", i)
        try:
            files.append((str(full), full.read_text(encoding="utf-8")))
        except OSError as exc:
            problems.append(Problem(name, _dotted(loc), _line_of(text, loc), f"cannot read {full}: {exc.strerror}"))
    if not problems and files:
        try:
            load_rule_files(files)
        except RuleError as exc:
            problems.append(Problem(name, "detection.rules", _line_of(text, ("detection", "rules")), str(exc)))
    if problems:
        raise ConfigError(problems)
    return config.model_copy(update={"rule_files": tuple(files)})


def _check_policy_data(config: Config, name: str, text: str) -> Config:
    """`policy.data` against the schema of the policy that reads it (docs/policy.md, "The settings
    schema"). Invariant: a key the policy does not read, or a kind, rule id, jurisdiction,
    endpoint name or obligation the configuration does not know, is refused here, since the rule
    it was meant to configure would otherwise be off without a word. A policy that ships no
    schema has its data checked for YAML syntax only, and a warning says so."""
    policy = config.policy
    warnings: list[str] = []

    def warn(key: str, message: str) -> None:
        loc = tuple(key.split("."))
        warnings.append(str(Problem(name, key, _key_line_of(text, loc), message)))

    if policy.engine == "builtin":
        if policy.data:
            warn("policy.data", "engine builtin reads no policy.data: these settings have no effect")
        return config.model_copy(update={"warnings": tuple(warnings)})
    if policy.engine == "opa" and policy.data:
        warn("policy.data", "engine opa does not send policy.data to the OPA server: load it there as data.egress_config")
    schema = _policy_schema(config, name, text)
    if schema is None:
        if policy.data:
            source = "the OPA server's policy" if policy.engine == "opa" else "the custom policy"
            warn(
                "policy.data",
                f"checked for YAML syntax only: {source} ships no schema (set policy.data_schema, "
                f"or put {data_schema.BUNDLED_SCHEMA_FILE} beside its .rego files; docs/policy.md)",
            )
        return config.model_copy(update={"warnings": tuple(warnings)})
    problems = []
    for issue in data_schema.check_classifications(schema, policy.client_classifications):
        loc = ("policy", "client_classifications", *issue.path)
        problems.append(Problem(name, _dotted(loc), _line_of(text, loc), issue.message))
    for issue in data_schema.check(schema, policy.data, _vocabulary(config, schema)):
        loc = ("policy", "data", *issue.path)
        line = _key_line_of(text, loc) if issue.at_key else _line_of(text, loc)
        problems.append(Problem(name, _dotted(loc), line, issue.message))
    if problems:
        raise ConfigError(problems)
    return config.model_copy(update={"warnings": tuple(warnings)})


def _bundled_schema_text() -> str:
    return (importlib.resources.files("egress") / "policy" / "bundle" / data_schema.BUNDLED_SCHEMA_FILE).read_text()


def _policy_schema(config: Config, name: str, text: str) -> data_schema.DataSchema | None:
    """The schema of the configured policy's data: policy.data_schema if set; else the bundled
    policy's; else, for custom .rego files, the one data_schema.yaml in their folders; else None."""
    policy = config.policy
    base = Path(name).parent if name != "<embedded defaults>" else Path.cwd()
    loc: tuple[str, ...] = ("policy", "data_schema")
    if policy.data_schema is not None:
        path = policy.data_schema if policy.data_schema.is_absolute() else base / policy.data_schema
    elif policy.engine == "rego" and not policy.files:
        return _parse_schema(_bundled_schema_text(), f"bundled:{data_schema.BUNDLED_SCHEMA_FILE}", name, text, loc)
    elif policy.engine == "rego":
        loc = ("policy", "files")
        beside = {(f if f.is_dir() else f.parent) / data_schema.BUNDLED_SCHEMA_FILE for f in policy.files}
        found = sorted(p for p in beside if p.is_file())
        if len(found) > 1:
            message = f"several schemas beside the policy files ({', '.join(map(str, found))}): name one in policy.data_schema"
            raise ConfigError([Problem(name, _dotted(loc), _line_of(text, loc), message)])
        if not found:
            return None
        path = found[0]
    else:
        return None
    try:
        schema_text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(name, _dotted(loc), _line_of(text, loc), f"cannot read {path}: {exc.strerror}")]) from None
    return _parse_schema(schema_text, str(path), name, text, loc)


def _parse_schema(schema_text: str, origin: str, name: str, text: str, loc: tuple[str, ...]) -> data_schema.DataSchema:
    try:
        return data_schema.parse_schema(yaml.safe_load(schema_text), origin)
    except yaml.YAMLError as exc:
        message = f"{origin}: not valid YAML: {exc}"
    except data_schema.SchemaError as exc:
        message = str(exc)
    raise ConfigError([Problem(name, _dotted(loc), _line_of(text, loc), f"the policy data schema: {message}")])


def _vocabulary(config: Config, schema: data_schema.DataSchema) -> data_schema.Vocabulary:
    """The values of each enumeration a schema may name, as this configuration defines them.
    Each is computed on first use only: rule ids and kinds need the rule set loaded."""
    cache: dict[str, frozenset[str]] = {}
    kinds: dict[str, str] = {}  # rule id -> kind, filled on first use

    def rules() -> dict[str, str]:
        if not kinds:
            kinds.update(rule_kinds(list(config.rule_files)))
            kinds.update({r.id: r.kind for r in internal_rules(config.detection.internal_identifiers)})
        return kinds

    sources = {
        "kinds": lambda: frozenset(k.value for k in MASKABLE_KINDS) | set(rules().values()),
        "rule_ids": lambda: frozenset(rules()),
        "confidence_tiers": lambda: frozenset(t.value for t in Tier),
        "jurisdictions": lambda: ISO_3166_ALPHA2 | SPECIAL_JURISDICTIONS | {e.jurisdiction for e in config.providers},
        "endpoints": lambda: frozenset(e.name for e in config.providers),
        "classifications": lambda: frozenset(
            schema.classifications
            if schema.classifications is not None
            else {"public", *config.policy.client_classifications}
        ),
        "obligations": _obligations,
    }

    def values(enumeration: str) -> frozenset[str]:
        if enumeration not in cache:
            cache[enumeration] = sources[enumeration]()
        return cache[enumeration]

    return values


def _obligations() -> frozenset[str]:
    """The obligations the gateway honours in a decision."""
    return OBLIGATIONS


def rule_kinds(user: list[tuple[str, str]]) -> dict[str, str]:
    """Rule id -> finding kind, for the rule set that load_rule_files(user) builds, read without
    compiling its patterns (which takes most of a second). The files were validated already;
    tests/unit/config/test_schema.py checks that both agree."""
    include_bundled = not user or any(tomllib.loads(text).get("extend", {}).get("useDefault") for _, text in user)
    kinds = _rule_kinds_of((bundled_files() if include_bundled else []) + user)
    disabled = {d for _, text in user for d in tomllib.loads(text).get("extend", {}).get("disabledRules") or []}
    if include_bundled and NEAR_MISS_RULE_ID not in disabled:
        kinds[NEAR_MISS_RULE_ID] = "secret"  # derived from the bundled vendor prefixes (detect/rules.py)
    return kinds


def _rule_kinds_of(files: list[tuple[str, str]]) -> dict[str, str]:
    kinds: dict[str, str] = {}
    for _, text in files:
        doc = tomllib.loads(text)
        extend = doc.get("extend") or {}
        if extend.get("path"):
            nested = _rule_kinds_of([(extend["path"], Path(extend["path"]).read_text())])
            for rule_id, kind in nested.items():
                kinds.setdefault(rule_id, kind)
        for raw in doc.get("rules") or []:
            kinds[raw["id"]] = raw.get("kind", kinds.get(raw["id"], "secret"))
        for disabled in extend.get("disabledRules") or []:
            kinds.pop(disabled, None)
    return kinds


def _with_defaults(data: dict[str, Any], bundled: dict[str, Any]) -> dict[str, Any]:
    merged = dict(data)
    for key, default in bundled.items():
        given = data.get(key)
        if key not in data or given is None:
            merged[key] = default
        elif isinstance(default, dict) and isinstance(given, dict):
            merged[key] = {**default, **given}
    return merged


def _resolve_console_secret(config: Config, name: str, text: str, env: Mapping[str, str], require: bool) -> Config:
    """The console's OIDC client secret, from the environment variable the file names."""
    oidc = config.console.oidc
    if oidc is None or oidc.client_secret_env is None:
        return config
    value = env.get(oidc.client_secret_env)
    if not value and not require:
        return config
    if not value:
        loc = ("console", "oidc", "client_secret_env")
        message = f"environment variable {oidc.client_secret_env} is not set (the console's OIDC client secret)"
        raise ConfigError([Problem(name, _dotted(loc), _line_of(text, loc), message)])
    oidc = oidc.model_copy(update={"client_secret": SecretStr(value)})
    return config.model_copy(update={"console": config.console.model_copy(update={"oidc": oidc})})


def _resolve_credentials(config: Config, name: str, text: str, env: Mapping[str, str], require: bool) -> Config:
    problems: list[Problem] = []
    endpoints = []
    for i, endpoint in enumerate(config.providers):
        creds = endpoint.credentials
        if creds.env is not None:
            value = env.get(creds.env)
            if not value and not require:
                endpoints.append(endpoint)
                continue
            if not value:
                loc = ("providers", i, "credentials", "env")
                problems.append(
                    Problem(
                        name,
                        _dotted(loc),
                        _line_of(text, loc),
                        f"environment variable {creds.env} is not set (endpoint {endpoint.name!r})",
                    )
                )
                continue
            creds = creds.model_copy(update={"api_key": SecretStr(value)})
            endpoint = endpoint.model_copy(update={"credentials": creds})
        endpoints.append(endpoint)
    if problems:
        raise ConfigError(problems)
    return config.model_copy(update={"providers": tuple(endpoints)})


def _bundled_catalog_text() -> str:
    return (importlib.resources.files("egress") / "defaults" / "catalog.yaml").read_text()


def _with_catalog(name: str, text: str, data: dict[str, Any]) -> tuple[dict[str, Any], ProviderCatalog]:
    """The configuration with its `catalog:` list applied to the bundled catalog and taken out,
    and every provider that names a catalog entry (`catalog: <id>`) expanded into a full endpoint."""
    catalog = _extended_catalog(name, text, parse_catalog(yaml.safe_load(_bundled_catalog_text())), data.get("catalog"))
    rest = {k: v for k, v in data.items() if k != "catalog"}
    if isinstance(rest.get("providers"), list):
        rest["providers"] = _catalog_providers(name, text, catalog, rest["providers"])
    return rest, catalog


def _extended_catalog(name: str, text: str, catalog: ProviderCatalog, extension: Any) -> ProviderCatalog:
    """Each item of `catalog:` adds an entry (a new id) or overrides fields of one (a known id)."""
    if extension is None:
        return catalog
    if not isinstance(extension, list):
        raise ConfigError([Problem(name, "catalog", _line_of(text, ("catalog",)), "must be a list of catalog entries")])
    problems: list[Problem] = []
    for i, patch in enumerate(extension):
        loc = ("catalog", i)
        if not isinstance(patch, dict) or not isinstance(patch.get("id"), str):
            problems.append(Problem(name, _dotted(loc), _line_of(text, loc), "each entry is a mapping with an `id`"))
            continue
        try:
            catalog = catalog.with_entry(CatalogEntry.model_validate(patched_entry(catalog.get(patch["id"]), patch)))
        except ValidationError as exc:
            problems.extend(_problems(name, text, exc, loc))
    if problems:
        raise ConfigError(problems)
    return catalog


def _catalog_providers(name: str, text: str, catalog: ProviderCatalog, providers: list[Any]) -> list[Any]:
    """Providers with `catalog: <id>` take that entry's facts; the keys they give win."""
    problems: list[Problem] = []
    expanded: list[Any] = []
    for i, provider in enumerate(providers):
        if not isinstance(provider, dict) or "catalog" not in provider:
            expanded.append(provider)
            continue
        try:
            expanded.append(instantiate(catalog.entry_for(str(provider["catalog"])), provider))
        except CatalogError as exc:
            loc = ("providers", i, exc.key)
            problems.append(Problem(name, _dotted(loc), _line_of(text, loc), exc.message))
    if problems:
        raise ConfigError(problems)
    return expanded


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problems(name: str, text: str, exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = prefix + tuple(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and place)"
        elif error["type"] == "missing":
            message = "required key is missing"
        problems.append(Problem(name, _dotted(loc), _line_of(text, loc), message))
    return problems


def _key_line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the mapping key that ends `loc` (an unknown key: where it is written),
    else what _line_of says."""
    try:
        node: Any = yaml.compose(text)
    except yaml.YAMLError:
        return None
    for part in loc[:-1]:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
        if node is None:
            return _line_of(text, loc)
    if isinstance(node, yaml.MappingNode):
        key = next((k for k, _ in node.value if k.value == str(loc[-1])), None)
        if key is not None:
            line: int = key.start_mark.line
            return line + 1
    return _line_of(text, loc)


def _line_of(text: str, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at `loc`, or of its nearest existing parent."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((v for k, v in node.value if k.value == part), None)
            if node is None:
                # A missing or misplaced key: point at its parent mapping.
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
    if node is not None:
        line = node.start_mark.line + 1
    return line
