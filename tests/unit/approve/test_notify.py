"""Webhook bodies: the generic document and the Slack incoming-webhook body carry ids, counts and
reasons, never more; Slack's control characters in reasons and names are escaped."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from egress.approve.notify import generic_body, slack_body
from egress.core.approvals import Approval

URL = "https://egress.example/admin/approvals/apv_x"


def approval(reasons: tuple[str, ...] = ("a finding requires approval",), user: str = "alice") -> Approval:
    return Approval(
        approval_id="apv_x",
        status="pending",
        user=user,
        team="platform",
        request_id="egr_1",
        api="anthropic.messages",
        model="claude-sonnet-4-5",
        endpoints=("eu-cloud", "own"),
        reasons=reasons,
        kinds={"secret": 2},
        rules={"private-key-pem": 1, "aws-access-key-id": 1},
        digest="d" * 64,
        created_at=1_800_000_000.0,
        expires_at=1_800_000_300.0,
        decided_by=None,
        decided_at=None,
        note=None,
    )


def test_generic_body_is_the_approvals_facts() -> None:
    doc = generic_body(approval(), URL)
    assert doc == {
        "type": "egress.approval.requested",
        "url": URL,
        "approval_id": "apv_x",
        "user": "alice",
        "team": "platform",
        "api": "anthropic.messages",
        "model": "claude-sonnet-4-5",
        "endpoints": ["eu-cloud", "own"],
        "reasons": ["a finding requires approval"],
        "kinds": {"secret": 2},
        "rules": {"private-key-pem": 1, "aws-access-key-id": 1},
        "created_at": 1_800_000_000.0,
        "expires_at": 1_800_000_300.0,
    }
    assert "digest" not in json.dumps(doc)


def test_slack_body_has_text_and_a_button_to_the_approval() -> None:
    doc = slack_body(approval(), URL)
    assert "apv_x" in doc["text"] and "alice (platform)" in doc["text"]
    (actions,) = [b for b in doc["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == URL
    fields = json.dumps(doc["blocks"], ensure_ascii=False)
    assert "secret ×2" in fields and "private-key-pem ×1" in fields and "eu-cloud, own" in fields


@given(reasons=st.lists(st.text(max_size=40), max_size=4), user=st.text(min_size=1, max_size=20))
def test_slack_mrkdwn_never_carries_raw_control_characters(reasons: list[str], user: str) -> None:
    doc = slack_body(approval(tuple(reasons), user), URL)
    for block in doc["blocks"]:
        texts = [block.get("text", {}).get("text", "")] if block["type"] == "section" else []
        texts += [f["text"] for f in block.get("fields", [])]
        texts += [e["text"] for e in block.get("elements", []) if e["type"] == "mrkdwn"]
        for text in texts:
            assert "<" not in text and ">" not in text
    json.dumps(doc)  # serialisable whatever the input
