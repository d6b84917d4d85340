"""The session ledger: a value masked earlier in an agent session stays masked where no detector
sees it any more (a compaction summary), for that user and session only, and enters a restore
map only when it was masked in that request."""

from __future__ import annotations

import json

from egress.core.exchange import Api
from egress.mask.ledger import SessionLedger
from egress.mask.masker import Masker
from egress.wire.apis import APIS
from tests.support.masking import MASK_SECRETS, PLACEHOLDERS, literal_findings

PASSWORD = "Xk9mQ2vLp7Rt4abcZ"


def mask(ledger: SessionLedger, user: str, session: str, text: str, detected: dict[str, str]):
    body = json.dumps({"model": "claude-x", "max_tokens": 9, "messages": [{"role": "user", "content": text}]}).encode()
    parsed = APIS[Api.ANTHROPIC_MESSAGES].parse_request(Api.ANTHROPIC_MESSAGES, body)
    findings = literal_findings(parsed.prompt, detected)
    masked = Masker(PLACEHOLDERS).apply(body, parsed, findings, MASK_SECRETS, None, ledger.known(user, session))
    ledger.remember(user, session, masked.placeholders)
    return masked, json.loads(masked.body)["messages"][0]["content"]


def test_a_value_masked_earlier_in_the_session_stays_masked_without_its_detector():
    ledger = SessionLedger()
    first, _ = mask(ledger, "alice", "s1", f"DB_PASSWORD={PASSWORD}", {PASSWORD: "generic-secret-env"})
    (placeholder,) = first.placeholders
    # After compaction only the model's summary mentions it, where no rule would fire.
    second, text = mask(ledger, "alice", "s1", f"Summary: the database password is {PASSWORD}.", {})
    assert PASSWORD not in text and placeholder in text
    assert second.placeholders == {placeholder: PASSWORD}
    # Same placeholder as before: the prompt prefix stays stable.


def test_other_sessions_and_users_do_not_see_it_and_absent_values_are_not_restorable():
    ledger = SessionLedger()
    mask(ledger, "alice", "s1", f"DB_PASSWORD={PASSWORD}", {PASSWORD: "generic-secret-env"})
    _, text = mask(ledger, "alice", "s2", f"the password is {PASSWORD}", {})
    assert PASSWORD in text  # another session: nothing remembered (and nothing detected)
    _, text = mask(ledger, "mallory", "s1", f"the password is {PASSWORD}", {})
    assert PASSWORD in text  # another user with the same session id: nothing
    unrelated, _ = mask(ledger, "alice", "s1", "no secret here", {})
    assert unrelated.placeholders == {}  # remembered values are restorable only where masked


def test_bounded_and_expiring():
    now = [0.0]
    ledger = SessionLedger(max_sessions=2, max_values=2, ttl_s=10, clock=lambda: now[0])
    ledger.remember("u", "a", {"EGX_A_aaaaaaaaaaaaa": "v1", "EGX_B_bbbbbbbbbbbbb": "v2", "EGX_C_ccccccccccccc": "v3"})
    assert set(ledger.known("u", "a")) == {"v2", "v3"}
    ledger.remember("u", "b", {"EGX_A_aaaaaaaaaaaaa": "v1"})
    ledger.remember("u", "c", {"EGX_A_aaaaaaaaaaaaa": "v1"})
    assert ledger.known("u", "a") == {}  # evicted: at most two sessions
    now[0] = 11
    assert ledger.known("u", "c") == {}  # expired
