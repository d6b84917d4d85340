"""Large rule programs get a DFA budget that fits them: scanning text dense with JWTs neither logs RE2's "DFA out of memory" (once per search, on stderr, with
the default 8 MiB budget) nor loses a finding. Run in a fresh interpreter: RE2 writes that line
to file descriptor 2 from C++."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import base64, json, secrets
from egress.config import load_config
from egress.app import build_matcher

def b64(doc):
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

jwt = b64({"alg": "RS256", "typ": "JWT"}) + "." + b64({"sub": "1234567890", "iat": 1516239022})
jwt += "." + secrets.token_urlsafe(600)
text = "\n".join(f"token{i} = {jwt}" for i in range(40))
matcher = build_matcher(load_config(None, env={"HOME": "/nonexistent-home"}))
found = {m.rule.id for m in matcher.scan(text)}
print(sorted(found))
"""


def test_jwt_dense_text_scans_without_dfa_exhaustion() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "DFA out of memory" not in result.stderr
    assert "'jwt'" in result.stdout
