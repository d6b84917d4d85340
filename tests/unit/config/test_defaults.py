"""One way from configuration to code: each section of the configuration is typed as the settings
type of the package that reads it, and that type holds the section's defaults, once. The embedded
defaults (egress/defaults/egress.yaml) restate some of them for the reader: they must agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from egress.admin.settings import ConsoleOidcSettings, ConsoleSettings
from egress.approve.settings import ApprovalMode, ApprovalSettings
from egress.audit.settings import AuditSettings
from egress.config import Config, ConfigError, load_config
from egress.detect.settings import DetectionSettings
from egress.gateway.settings import AuthSettings, ServerSettings
from egress.identity.settings import OidcSettings
from egress.lockdown.settings import GatewaySite, IstioSite, LockdownSettings
from egress.mask.settings import MaskingSettings
from egress.policy.settings import PolicySettings
from egress.recording.settings import RecordingSettings
from egress.route.settings import BreakerSettings, UpstreamSettings
from egress.store.settings import StoreSettings

# Config field -> the package settings type it is.
PACKAGE_SECTIONS: dict[str, type[BaseModel]] = {
    "server": ServerSettings,
    "store": StoreSettings,
    "auth": AuthSettings,
    "upstream": UpstreamSettings,
    "audit": AuditSettings,
    "policy": PolicySettings,
    "approvals": ApprovalSettings,
    "recording": RecordingSettings,
    "console": ConsoleSettings,
    "lockdown": LockdownSettings,
}
# Sections load_config completes (detection.cache_dir from the environment) or the embedded
# file sets apart from the type's default on purpose (masking.kinds: personal data too).
COMPLETED_SECTIONS: dict[str, tuple[type[BaseModel], str]] = {
    "detection": (DetectionSettings, "cache_dir"),
    "masking": (MaskingSettings, "kinds"),
}
SETTINGS_TYPES = (
    *PACKAGE_SECTIONS.values(),
    DetectionSettings,
    MaskingSettings,
    OidcSettings,
    ConsoleOidcSettings,
    BreakerSettings,
    GatewaySite,
    IstioSite,
)

PROVIDERS_ONLY = """\
providers:
  - name: own
    api: openai-chat
    base_url: http://127.0.0.1:9000/v1
    models: ["*"]
    credentials: {passthrough: true}
    operator: ourselves
    jurisdiction: self
    region: office
    retention_days: 0
    trains_on_api_data: false
    dpa: false
"""


def test_config_sections_are_the_package_settings_types():
    for field, settings_type in PACKAGE_SECTIONS.items():
        assert Config.model_fields[field].annotation is settings_type, field
    for field, (settings_type, _) in COMPLETED_SECTIONS.items():
        assert Config.model_fields[field].annotation is settings_type, field
    assert AuthSettings.model_fields["oidc"].annotation == OidcSettings | None
    assert ConsoleSettings.model_fields["oidc"].annotation == ConsoleOidcSettings | None


@pytest.mark.parametrize("settings_type", SETTINGS_TYPES, ids=lambda t: t.__name__)
def test_settings_types_are_frozen_and_refuse_unknown_keys(settings_type):
    assert settings_type.model_config.get("frozen") is True
    assert settings_type.model_config.get("extra") == "forbid"


def test_embedded_defaults_are_the_settings_types_defaults(tmp_path: Path):
    config = load_config(None, env={"HOME": str(tmp_path)})
    for field, settings_type in PACKAGE_SECTIONS.items():
        assert getattr(config, field) == settings_type(), field
    for field, (settings_type, apart) in COMPLETED_SECTIONS.items():
        section = getattr(config, field)
        assert section.model_copy(update={apart: getattr(settings_type(), apart)}) == settings_type(), field
    assert config.detection.cache_dir == tmp_path / ".cache" / "egress"
    # The one default the embedded file changes on purpose: it also masks personal data.
    assert config.masking.kinds == ("secret", "pii")
    assert config.auth.oidc is None and config.console.oidc is None


def test_a_file_without_a_section_gets_the_same_defaults(tmp_path: Path):
    path = tmp_path / "egress.yaml"
    path.write_text(PROVIDERS_ONLY)
    config = load_config(path, env={"HOME": str(tmp_path)})
    for field, settings_type in PACKAGE_SECTIONS.items():
        assert getattr(config, field) == settings_type(), field


def test_sections_reach_the_code_as_given(tmp_path: Path):
    path = tmp_path / "egress.yaml"
    path.write_text(
        PROVIDERS_ONLY
        + "approvals: {mode: refuse}\n"
        + "audit: {flush_interval_ms: 5, durability: after_response}\n"
        + "policy: {timeout_ms: 1500, engine: opa, opa_url: 'http://127.0.0.1:8181'}\n"
        + "recording: {retention_days: 2}\n"
        + "auth: {oidc: {issuer: 'https://idp.example', audience: egress}}\n"
    )
    config = load_config(path, env={"HOME": str(tmp_path)})
    assert config.approvals.mode is ApprovalMode.REFUSE and config.approvals.mode == "refuse"
    assert config.audit.flush_interval_s == 0.005 and config.audit.write_ahead_timeout_s is None
    assert config.policy.timeout_s == 1.5 and config.policy.decision_ttl_s == 5.0
    assert config.recording.retention_s == 2 * 86400.0
    assert config.auth.oidc == OidcSettings(issuer="https://idp.example", audience=("egress",))


def test_the_oidc_algorithm_check_is_the_settings_type_s(tmp_path: Path):
    """One check, so the configuration file and code building settings refuse alike."""
    message = "HS256 is not accepted; use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA"
    with pytest.raises(ValueError, match=message):
        OidcSettings(issuer="https://idp.example", audience=("egress",), algorithms=("HS256",))
    path = tmp_path / "egress.yaml"
    path.write_text(
        PROVIDERS_ONLY
        + "auth:\n  oidc:\n    issuer: https://idp.example\n    audience: egress\n    algorithms: [HS256]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"HOME": str(tmp_path)})
    assert [str(p) for p in info.value.problems] == [f"{path}:17: auth.oidc.algorithms: Value error, {message}"]


def test_an_unknown_approval_mode_is_named(tmp_path: Path):
    path = tmp_path / "egress.yaml"
    path.write_text(PROVIDERS_ONLY + "approvals:\n  mode: wait\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"HOME": str(tmp_path)})
    assert [str(p) for p in info.value.problems] == [f"{path}:14: approvals.mode: Input should be 'hold' or 'refuse'"]
