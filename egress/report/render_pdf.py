"""The pack as PDF: the HTML page laid out by WeasyPrint (pango underneath)."""

from __future__ import annotations

from weasyprint import HTML  # type: ignore[import-untyped]  # ships no type information

from egress.report.model import Report
from egress.report.render_html import render_html


def render_pdf(report: Report) -> bytes:
    pdf = HTML(string=render_html(report)).write_pdf()
    if not isinstance(pdf, bytes):  # write_pdf returns the bytes when given no target
        raise TypeError("WeasyPrint returned no PDF")
    return pdf
