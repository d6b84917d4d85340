"""Masking real source files with the real inspection engine: every other line stays byte-identical,
and the files still parse (Python, JSON, YAML) with the placeholders in place."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

from egress.app import build_scanner
from egress.config import load_config
from egress.core.exchange import Api
from egress.mask.masker import Masker
from egress.wire.apis import APIS
from tests.support.masking import MASK_SECRETS, PLACEHOLDERS

CORPUS = Path(__file__).resolve().parents[2] / "corpus" / "masking"
PARSERS = {".py": ast.parse, ".json": json.loads, ".yaml": yaml.safe_load}


@pytest.fixture(scope="module")
def scanner():
    return build_scanner(load_config(None, env={}))


def as_tool_result(text: str) -> bytes:
    doc = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "messages": [
            {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "x"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": text}]},
        ],
    }
    return json.dumps(doc).encode()


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.iterdir()))
def test_masked_file_keeps_every_other_line_and_still_parses(scanner, name):
    original = (CORPUS / name).read_text()
    body = as_tool_result(original)
    parsed = APIS[Api.ANTHROPIC_MESSAGES].parse_request(Api.ANTHROPIC_MESSAGES, body)
    findings = scanner.scan(parsed.prompt)
    secrets = {parsed.prompt.segments[f.segment].text[f.start : f.end] for f in findings if f.kind == "secret"}
    assert len(secrets) >= 2, "the corpus file should hold detectable secrets"
    masked = Masker(PLACEHOLDERS).apply(body, parsed, findings, MASK_SECRETS)
    text = json.loads(masked.body)["messages"][1]["content"][0]["content"]
    for secret in secrets:
        assert secret not in text
    before, after = original.splitlines(keepends=True), text.splitlines(keepends=True)
    assert len(before) == len(after)
    for old, new in zip(before, after, strict=True):
        if not any(s in old for s in secrets):
            assert new == old
        else:
            restored = new
            for placeholder, value in masked.placeholders.items():
                restored = restored.replace(placeholder, value)
            assert restored == old
    masked_doc, original_doc = PARSERS[Path(name).suffix](text), PARSERS[Path(name).suffix](original)
    if isinstance(original_doc, dict):
        assert masked_doc.keys() == original_doc.keys()
    else:
        assert [type(n).__name__ for n in ast.walk(masked_doc)] == [type(n).__name__ for n in ast.walk(original_doc)]
