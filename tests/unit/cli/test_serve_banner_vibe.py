"""`egress serve`'s banner for Mistral Vibe: printed when an `api: mistral` endpoint can answer it,
with `vibe_base_url` on egress (Vibe sends the provider key to it, which is the gateway key)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import yaml

from egress.cli.serve import banner_lines
from egress.config import load_config
from tests.support.gateway import SIM_ENV, write_config

KEY = "egk_" + "v" * 43
ENV = {**SIM_ENV, "SIM_MISTRAL_KEY": "mistral-upstream-key"}


def _config(tmp_path: Path, credentials: dict[str, object]) -> Path:
    path = write_config(tmp_path, "http://127.0.0.1:9")
    doc = yaml.safe_load(path.read_text())
    mistral = {**doc["providers"][1], "name": "mistral", "api": "mistral", "credentials": credentials}
    doc["providers"].append({**mistral, "models": ["devstral-medium-2507", "mistral-*"]})
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _vibe_toml(banner: list[str]) -> dict:
    start = banner.index("Mistral Vibe (~/.vibe/config.toml; the top-level keys before the tables):") + 1
    body = []
    for line in banner[start:]:
        if not line.startswith("  ") or line.startswith("  #"):
            break
        body.append(line.strip())
    return tomllib.loads("\n".join(body))


def test_vibe_config_points_everything_at_egress(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, {"env": "SIM_MISTRAL_KEY"}), env={**ENV, "HOME": str(tmp_path)})
    banner = banner_lines(config, 8080, KEY)
    doc = _vibe_toml(banner)  # the lines parse as the TOML Vibe reads
    assert doc["vibe_base_url"] == "http://127.0.0.1:8080"
    [provider] = doc["providers"]
    assert provider == {
        "name": "egress",
        "api_base": "http://127.0.0.1:8080/v1",
        "backend": "mistral",
        "api_key_env_var": "EGRESS_KEY",
    }
    [model] = doc["models"]
    assert model == {"name": "devstral-medium-2507", "provider": "egress", "alias": doc["active_model"]}
    assert f"  # and: export EGRESS_KEY={KEY}" in banner


def test_vibe_with_passthrough_endpoints_is_told_what_works(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, {"passthrough": True}), env={**ENV, "HOME": str(tmp_path)})
    banner = banner_lines(config, 8080, KEY)
    assert "Mistral Vibe: give the `api: mistral` endpoints {env: ...} credentials (README, agent table)" in banner
    assert not any("vibe_base_url" in line for line in banner)


def test_no_mistral_endpoint_no_vibe_lines(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9"), env={**SIM_ENV, "HOME": str(tmp_path)})
    assert not any("Mistral Vibe" in line for line in banner_lines(config, 8080, KEY))
