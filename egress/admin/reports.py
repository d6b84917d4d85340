"""The console's Reports page: the compliance pack (egress.report) for a period, generated from
the store and downloaded as JSON, HTML or PDF. Admins only: the pack covers every team (a
team-scoped pack could not be checked against a complete audit export).

The console has no checklist answers (they need the policy engine's verdicts per endpoint): the
pack it makes says so, and `egress report` adds them."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from egress.core.endpoint import Endpoint
from egress.report.context import ReportContext
from egress.report.measures import measures
from egress.report.model import Report, build
from egress.report.render_html import render_html
from egress.report.render_json import render_json
from egress.route.provider_catalog import ProviderCatalog
from egress.store.base import SqlStore

FORMATS = {"json": "application/json", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


@dataclass(frozen=True, slots=True)
class Download:
    body: bytes
    media_type: str
    filename: str


def console_context(
    endpoints: Sequence[Endpoint], catalog: ProviderCatalog, policy_data: dict[str, Any], engine: str, approvals: bool
) -> ReportContext:
    kinds = [str(k) for k in policy_data.get("mask_kinds") or ()]
    return ReportContext.of(endpoints, catalog, (), measures(kinds, "as configured" if approvals else None, engine))


def generate(store: SqlStore, context: ReportContext, since: float, until: float) -> Report:
    """Reads the whole chain (a report's figures must be recomputable from a complete export)."""
    return build(store.iter_audit(), store.list_checkpoints(), context, since, until)


def download(report: Report, fmt: str) -> Download:
    if fmt == "pdf":
        # WeasyPrint loads pango and its CSS engine when imported (~0.7 s): imported on the first
        # PDF asked for, so the gateway (which mounts this console) starts without it.
        body = importlib.import_module("egress.report.render_pdf").render_pdf(report)
    elif fmt == "html":
        body = render_html(report).encode()
    else:
        body = render_json(report)
    f = report.figures
    return Download(body, FORMATS[fmt], f"egress-report-{int(f.since)}-{int(f.until)}.{fmt}")
