"""Identical retries join the pending approval instead of opening another.

Identical means the same user, API and masked body (the approval digest). A retry while the
approval is pending gets the same id in refuse mode and waits on the same approval in hold
mode; on one gateway, and on two gateways sharing one store (SQLite and PostgreSQL), even when
the requests race."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import pytest

from egress.approve.service import Approvals
from tests.integration.test_approvals import (
    body,
    config_file,
    pending,
    refused_id,
    running,
    shared_store_url,
    steps,
)


def openai_refused_id(resp: httpx.Response) -> str:
    assert resp.status_code == 403 and resp.json()["error"]["code"] == "approval_required"
    return resp.headers["x-egress-approval-id"]


def pendings(store) -> list[str]:
    return [a.approval_id for a in store.approval_list(("pending",), None, 100)]


def test_identical_retries_get_the_same_approval_in_refuse_mode(upstream, tmp_path: Path) -> None:
    with running(config_file(tmp_path, upstream.url, mode="refuse")) as gw:
        content = body("anthropic", False)
        first = refused_id(gw.post("anthropic", content))
        assert [refused_id(gw.post("anthropic", content)) for _ in range(3)] == [first] * 3
        assert pendings(gw.store) == [first]
        # Not identical: another user, other content, another API each need their own approval.
        others = {
            refused_id(gw.post("anthropic", content, who="bob")),
            refused_id(gw.post("anthropic", body("anthropic", False, "one more line"))),
            openai_refused_id(gw.post("chat", body("chat", False))),
        }
        assert first not in others and len(others) == 3
        assert len(pendings(gw.store)) == 4
        records = gw.records(expect=11)
        assert steps(records, first) == [("requested", "egress")]  # asked once, whatever the retries
        joined = [r for r in records if r.get("type") is None and (r.get("approval") or {}).get("id") == first]
        assert len(joined) == 4 and all(r["outcome"] == "refused" for r in joined)
        # Once it is decided, the retry uses it; the next identical request opens a new one.
        Approvals(gw.store).approve(first, "sec-lead")
        assert gw.post("anthropic", content).status_code == 200
        assert refused_id(gw.post("anthropic", content)) != first
        assert len(upstream.received) == 1


def test_a_retry_waits_on_the_held_requests_approval(upstream, tmp_path: Path) -> None:
    path = config_file(tmp_path, upstream.url, mode="hold", timeout_s=60)
    with running(path) as gw:
        content = body("anthropic", False)
        results: list[httpx.Response] = []
        threads = [threading.Thread(target=lambda: results.append(gw.post("anthropic", content, timeout=60))) for _ in range(2)]
        threads[0].start()
        approval = pending(gw.store)
        threads[1].start()
        assert steps(gw.records(expect=1), approval.approval_id) == [("requested", "egress")]
        threading.Event().wait(1.5)  # generous: the retry reaches the gate and waits
        assert pendings(gw.store) == [approval.approval_id]  # it joined: no second approval
        Approvals(gw.store).approve(approval.approval_id, "sec-lead")
        for t in threads:
            t.join(60)
        # Approved once, used once: one request goes upstream, the duplicate is refused.
        assert sorted(r.status_code for r in results) == [200, 403]
        assert len(upstream.received) == 1
        assert len(gw.store.approval_list(None, None, 100)) == 1
        waited = [r for r in gw.records(expect=5) if r.get("type") is None and r.get("approval")]
        assert [r["approval"]["id"] for r in waited] == [approval.approval_id] * 2


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_gateways_on_one_store_share_one_pending_approval(upstream, tmp_path: Path, kind: str) -> None:
    with shared_store_url(kind, tmp_path) as store_url:
        path = config_file(tmp_path, upstream.url, store_url, mode="refuse")
        with running(path) as a, running(path, keys=(a.alice, a.bob)) as b:
            content = body("anthropic", False)
            first = refused_id(a.post("anthropic", content))
            assert refused_id(b.post("anthropic", content)) == first
            # Racing: eight identical requests at once, half on each gateway.
            ids: list[str] = []
            fresh = body("anthropic", False, "a new request")
            gateways = [a, b] * 4
            threads = [threading.Thread(target=lambda g=g: ids.append(refused_id(g.post("anthropic", fresh)))) for g in gateways]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            assert len(ids) == 8 and len(set(ids)) == 1 and first not in ids
            assert sorted(pendings(a.store)) == sorted([first, ids[0]])
