from __future__ import annotations

import pytest
from pydantic import ValidationError

from egress.config import Config, load_config
from egress.telemetry.settings import LoggingSettings, MetricsSettings, OrganisationSettings, TracingSettings


def test_everything_is_off_by_default() -> None:
    assert not MetricsSettings().enabled
    assert not TracingSettings().enabled
    assert LoggingSettings().format == "text" and not LoggingSettings().access_log
    assert OrganisationSettings().home_jurisdictions == ()


def test_metrics_are_never_open_to_anyone() -> None:
    with pytest.raises(ValidationError, match="token_env .* or listen"):
        MetricsSettings(enabled=True)
    assert MetricsSettings(enabled=True, token_env="T").token_env == "T"
    assert MetricsSettings(enabled=True, listen="127.0.0.1:9464").listen_address == ("127.0.0.1", 9464)
    assert MetricsSettings(enabled=True, listen="[::1]:9464").listen_address == ("::1", 9464)


@pytest.mark.parametrize("listen", ["9464", "host:", ":9464", "host:port", "host:70000"])
def test_a_listen_address_is_host_and_port(listen: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        MetricsSettings(enabled=True, listen=listen)


def test_home_jurisdictions_are_codes_the_catalog_uses() -> None:
    assert OrganisationSettings(home_jurisdictions=("EU", "CH")).home_jurisdictions == ("EU", "CH")
    with pytest.raises(ValidationError, match="'Europe' is not"):
        OrganisationSettings(home_jurisdictions=("Europe",))


def test_the_configuration_types_its_sections_as_these(tmp_path) -> None:
    path = tmp_path / "egress.yaml"
    path.write_text(
        "data_dir: " + str(tmp_path) + "\n"
        "organisation: {home_jurisdictions: [EU]}\n"
        "metrics: {enabled: true, token_env: EGRESS_METRICS_TOKEN}\n"
        "tracing: {enabled: true, endpoint: 'http://collector:4318/v1/traces'}\n"
        "logging: {format: json, access_log: true}\n"
    )
    config = load_config(path)
    assert config.organisation.home_jurisdictions == ("EU",)
    assert config.metrics.token_env == "EGRESS_METRICS_TOKEN"
    assert config.tracing.endpoint == "http://collector:4318/v1/traces"
    assert config.logging.format == "json" and config.logging.access_log


def test_the_sections_are_typed_as_the_telemetry_settings() -> None:
    fields = Config.model_fields
    assert fields["metrics"].annotation is MetricsSettings
    assert fields["tracing"].annotation is TracingSettings
    assert fields["logging"].annotation is LoggingSettings
    assert fields["organisation"].annotation is OrganisationSettings
