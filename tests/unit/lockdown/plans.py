"""The lock-down plan the unit tests and golden files are made from: tests/unit/lockdown/config.yaml
with the fixed catalog beside it (never the bundled one, which grows)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml

from egress.config import Config, load_config
from egress.lockdown.hosts import LockdownPlan, build_plan
from egress.route.provider_catalog import ProviderCatalog, parse_catalog

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
# Addresses "DNS answered" for the nftables golden file: resolution is an input, fixed here.
RESOLVED = {"api.anthropic.com": ("160.79.104.10",), "api2.cursor.sh": ("203.0.113.5", "203.0.113.6")}


@cache  # frozen: one load for the whole module
def config() -> Config:
    return load_config(HERE / "config.yaml", env={}, require_env=False)


@cache
def catalog() -> ProviderCatalog:
    return parse_catalog(yaml.safe_load((HERE / "catalog.yaml").read_text()))


def plan() -> LockdownPlan:
    cfg = config()
    return build_plan(cfg.providers, catalog(), cfg.lockdown)
