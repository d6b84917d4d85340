"""A secret-dense text is masked as one value: one placeholder for the whole text, restorable,
and `mask(restore(x)) == x` holds for it like for any other value."""

from __future__ import annotations

import json
import random
import string
from hashlib import blake2b

from egress.core.exchange import Api
from egress.detect.scan import DENSE_RULE_ID, Scanner, TextScanner
from egress.mask.masker import Masker
from egress.mask.placeholders import _LETTERS, HASH_LEN, PREFIX
from egress.mask.restore import Restorer
from egress.wire.apis import APIS
from tests.support.corpus import bundled_matcher
from tests.support.masking import KEYS, MASK_SECRETS, PLACEHOLDERS

API = Api.ANTHROPIC_MESSAGES


def dense_text(n: int) -> str:
    rng = random.Random(7)
    alnum = string.ascii_letters + string.digits
    # Quotes, backslashes and newlines too: the whole text is one value, escaped in the body.
    lines = [f'token {i}: "glpat-{"".join(rng.choice(alnum) for _ in range(20))}" \\ ü' for i in range(n)]
    return "\n".join(lines)


def body(messages: list[dict]) -> bytes:
    return json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": messages}).encode()


def mask(scanner: Scanner, raw: bytes):
    parsed = APIS[API].parse_request(API, raw)
    findings = scanner.scan(parsed.prompt)
    return findings, Masker(PLACEHOLDERS).apply(raw, parsed, findings, MASK_SECRETS)


def test_a_dense_text_is_one_placeholder_and_round_trips():
    scanner = Scanner(TextScanner(bundled_matcher(), max_findings=40))
    dense = dense_text(41)
    turn1 = [{"role": "user", "content": "hello"}, {"role": "user", "content": dense}]
    findings, masked = mask(scanner, body(turn1))
    assert [(f.rule_id, f.segment) for f in findings] == [(DENSE_RULE_ID, 1)]
    sent = json.loads(masked.body)["messages"]
    assert sent[0]["content"] == "hello"
    (placeholder,) = masked.placeholders
    assert sent[1]["content"] == placeholder and masked.placeholders[placeholder] == dense
    assert b"glpat-" not in masked.body

    # The model repeats the placeholder; the client gets the text back, exactly.
    reply = {"content": [{"type": "text", "text": f"{placeholder}"}]}
    restored = json.loads(Restorer().body(API, masked.placeholders, json.dumps(reply).encode()))
    assert restored["content"][0]["text"] == dense

    # Turn 2 resends it: masked again to the same placeholder, so the model sees what it wrote.
    turn2 = [*turn1, {"role": "assistant", "content": restored["content"]}, {"role": "user", "content": "go on"}]
    _, again = mask(scanner, body(turn2))
    resent = json.loads(again.body)["messages"]
    assert resent[2]["content"][0]["text"] == placeholder
    assert resent[1]["content"] == placeholder
    assert again.placeholders == masked.placeholders


def test_below_the_cap_each_value_is_its_own_placeholder():
    scanner = Scanner(TextScanner(bundled_matcher(), max_findings=40))
    findings, masked = mask(scanner, body([{"role": "user", "content": dense_text(40)}]))
    assert len(findings) == 40 and len(masked.placeholders) == 40
    assert b"glpat-" not in masked.body


def test_a_huge_value_gets_the_placeholder_of_its_whole_utf8():
    """Large values are hashed in pieces: the digest is that of the whole value's UTF-8."""
    value = ("é\ud800x" * 700_000)[:2_000_001]  # over 1 MiB of pieces, a lone surrogate on a cut
    whole = blake2b(value.encode("utf-8", "surrogatepass"), key=KEYS.placeholder, digest_size=HASH_LEN).digest()
    assert PLACEHOLDERS.make(value, "X") == f"{PREFIX}X_{whole.translate(_LETTERS).decode('ascii')}"
    audit = blake2b(value.encode("utf-8", "surrogatepass"), key=KEYS.audit, digest_size=16).hexdigest()
    assert PLACEHOLDERS.audit_hash(value) == "blake2b:" + audit
