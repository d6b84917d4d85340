"""The pack as JSON: sorted keys, two-space indent, so the same report is the same bytes."""

from __future__ import annotations

from typing import Any

import orjson

from egress.report.figures import Figures
from egress.report.model import Report

_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS


def render_json(report: Report) -> bytes:
    return orjson.dumps(report, option=_OPTIONS) + b"\n"


def figures_json(figures: Figures) -> Any:
    """The figures as plain JSON values (as they read back from a report file)."""
    return orjson.loads(orjson.dumps(figures, option=_OPTIONS))
