"""`egress serve` (and each of its workers) imports egress.app: optional components whose
libraries cost a second to import load only when they are used (SAML sign-in, the PDF pack)."""

import subprocess
import sys

HEAVY = ("saml2", "weasyprint", "xmlschema")


def test_the_gateway_starts_without_loading_saml_or_pdf_libraries() -> None:
    probe = f"import sys, egress.app\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120)
    assert loaded.stdout.strip() == "[]", loaded.stdout
