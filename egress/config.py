"""Configuration: the only module that reads configuration files and the environment.

It is read once, validated into frozen models, and passed down; nothing below reads a file or an
environment variable on its own. Errors name the file, the key path, its line, and what is wrong.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from egress.core.endpoint import Endpoint
from egress.detect.internal import InternalIdentifiers
from egress.detect.rules import RuleError, load_rule_files
from egress.route.catalog import Catalog

ENV_CONFIG = "EGRESS_CONFIG"
ENV_DATA_DIR = "EGRESS_DATA_DIR"


class ServerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    body_read_timeout_s: float = Field(default=30.0, gt=0)
    header_read_timeout_s: float = Field(default=10.0, gt=0, description="deadline for a request's headers")
    public_url: str | None = Field(default=None, description="the URL clients use, if not http://host:port")


class StoreConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    url: str | None = Field(default=None, description="sqlite:///PATH or postgresql://…; default: SQLite in data_dir")

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class AuthConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    required: bool = True
    key_refresh_s: float = Field(default=2.0, gt=0, le=300, description="how soon a revoked key stops working")


class UpstreamConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=600.0, gt=0)
    pool_size: int = Field(default=256, ge=1)
    keepalive_s: float = Field(default=60.0, ge=0)
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


class AuditConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    flush_interval_ms: float = Field(default=20.0, gt=0, le=5000)
    max_batch: int = Field(default=512, ge=1, le=100_000)


class DetectionConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = True
    rules: tuple[Path, ...] = Field(default=(), description="gitleaks-format rule files")
    internal_identifiers: InternalIdentifiers = InternalIdentifiers()
    cache_mb: int = Field(default=32, ge=0, le=4096, description="memory for findings of texts already seen")
    cache_dir: Path | None = Field(default=None, description="compiled rule automata; default $XDG_CACHE_HOME/egress")


FINDING_KINDS = ("secret", "pii", "sensitive_file", "internal")


class MaskingConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kinds: tuple[str, ...] = Field(
        default=("secret",), description="finding kinds the built-in policy masks (a Rego policy decides its own)"
    )
    key_file: Path | None = Field(default=None, description="tenant master key; default data_dir/masking.key")
    vault_ttl_hours: float = Field(default=720.0, gt=0, description="how long a stateful session's map is kept")

    @field_validator("kinds")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in value if k not in FINDING_KINDS]
        if unknown:
            raise ValueError(f"unknown finding kind {unknown[0]!r}; known: {', '.join(FINDING_KINDS)}")
        return value


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    server: ServerConfig = ServerConfig()
    data_dir: Path | None = None
    store: StoreConfig = StoreConfig()
    auth: AuthConfig = AuthConfig()
    upstream: UpstreamConfig = UpstreamConfig()
    audit: AuditConfig = AuditConfig()
    detection: DetectionConfig = DetectionConfig()
    masking: MaskingConfig = MaskingConfig()
    providers: tuple[Endpoint, ...]
    # Read once by load_config from detection.rules: (path, text) pairs.
    rule_files: tuple[tuple[str, str], ...] = Field(default=(), exclude=True)

    @field_validator("providers")
    @classmethod
    def _unique(cls, value: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
        if not value:
            raise ValueError("at least one provider endpoint is required")
        Catalog(value)  # raises on duplicate names
        return value

    @property
    def resolved_data_dir(self) -> Path:
        assert self.data_dir is not None, "load_config() always sets data_dir"
        return self.data_dir

    @property
    def masking_key_file(self) -> Path:
        return self.masking.key_file or self.resolved_data_dir / "masking.key"

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


def default_cache_dir(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".cache")
    return Path(base) / "egress"


def _bundled_text() -> str:
    return (importlib.resources.files("egress") / "defaults" / "egress.yaml").read_text()


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None, **overrides: Any) -> Config:
    """Read, validate and resolve the configuration.

    `path` None means: $EGRESS_CONFIG if set, else the embedded defaults. Keys missing from a
    file take the embedded defaults' values, except `providers`, which a file replaces whole.
    `overrides` (from command-line flags) set `server` keys.
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
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(name, text, exc)) from None
    config = _resolve_credentials(config, name, text, env)
    return _read_rule_files(config, name, text)


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


def _with_defaults(data: dict[str, Any], bundled: dict[str, Any]) -> dict[str, Any]:
    merged = dict(data)
    for key, default in bundled.items():
        given = data.get(key)
        if key not in data or given is None:
            merged[key] = default
        elif isinstance(default, dict) and isinstance(given, dict):
            merged[key] = {**default, **given}
    return merged


def _resolve_credentials(config: Config, name: str, text: str, env: Mapping[str, str]) -> Config:
    problems: list[Problem] = []
    endpoints = []
    for i, endpoint in enumerate(config.providers):
        creds = endpoint.credentials
        if creds.env is not None:
            value = env.get(creds.env)
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


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _problems(name: str, text: str, exc: ValidationError) -> list[Problem]:
    problems = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and place)"
        elif error["type"] == "missing":
            message = "required key is missing"
        problems.append(Problem(name, _dotted(loc), _line_of(text, loc), message))
    return problems


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
