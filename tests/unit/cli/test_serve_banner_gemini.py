"""`egress serve`'s banner for Gemini CLI: printed when a Gemini endpoint is configured, with the
gateway key as GEMINI_API_KEY where egress sends its own credential, as a header otherwise."""

from __future__ import annotations

from pathlib import Path

import yaml

from egress.cli.serve import banner_lines
from egress.config import load_config
from tests.support.gateway import SIM_ENV, write_config

KEY = "egk_" + "g" * 43


def _config(tmp_path: Path, credentials: dict[str, object] | None) -> Path:
    path = write_config(tmp_path, "http://127.0.0.1:9")
    doc = yaml.safe_load(path.read_text())
    if credentials is not None:
        gemini = {**doc["providers"][1], "name": "gemini", "api": "gemini", "credentials": credentials}
        doc["providers"].append(
            {**gemini, "base_url": "https://generativelanguage.googleapis.com", "models": ["gemini-*"]}
        )
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _banner(tmp_path: Path, credentials: dict[str, object] | None) -> list[str]:
    env = {**SIM_ENV, "SIM_GEMINI_KEY": "AIza-upstream", "HOME": str(tmp_path)}
    return banner_lines(load_config(_config(tmp_path, credentials), env=env), 8080, KEY)


def test_gemini_cli_gets_the_gateway_key_as_its_api_key(tmp_path: Path) -> None:
    banner = _banner(tmp_path, {"env": "SIM_GEMINI_KEY"})
    start = banner.index("Gemini CLI:")
    assert banner[start + 1 : start + 4] == [
        "  export GOOGLE_GEMINI_BASE_URL=http://127.0.0.1:8080",
        f"  export GEMINI_API_KEY={KEY}   # egress sends its own credential upstream",
        '  # ~/.gemini/settings.json: {"security": {"auth": {"selectedType": "gemini-api-key"}}}',
    ]


def test_passthrough_gemini_endpoints_get_the_key_as_a_header(tmp_path: Path) -> None:
    banner = _banner(tmp_path, {"passthrough": True})
    assert f'  export GEMINI_CLI_CUSTOM_HEADERS="x-egress-key: {KEY}"   # keep your own GEMINI_API_KEY' in banner


def test_no_gemini_endpoint_no_gemini_lines(tmp_path: Path) -> None:
    assert "Gemini CLI:" not in _banner(tmp_path, None)
