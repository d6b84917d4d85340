"""The pack as one self-contained HTML page (the PDF is rendered from it)."""

from __future__ import annotations

from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from egress.report.model import Report


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _yesno(value: bool | None) -> str:
    return "unknown" if value is None else "yes" if value else "no"


def environment() -> Environment:
    env = Environment(loader=PackageLoader("egress.report", "templates"), autoescape=select_autoescape(["html"]))
    env.filters["iso"] = _iso
    env.filters["yesno"] = _yesno
    return env


def render_html(report: Report, env: Environment | None = None) -> str:
    return (env or environment()).get_template("report.html").render(r=report)
