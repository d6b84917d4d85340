"""Cost of the masking stage and of streamed restoration, each beside its unmasked baseline.

Calls egress's own code in-process (no network, no event loop), timing every call with
time.perf_counter_ns after a warm-up, and reports medians (and means where asked):

  1. mask: Masker.apply on a ~200 KB Claude Code-shaped Messages request (system blocks, tool_use /
     tool_result turns holding this repo's own source) with 50 findings: (a) 50 distinct values,
     (b) 10 values x 5, both from a literal detector (tests/support/masking.py), and (a) again with
     the findings of the real inspection engine (egress.app.build_scanner, default detection).
     Cold = a new Masker per call (nothing cached); warm = one Masker reused, as over the turns of
     one conversation. Beside it: the no-mask path (a decision with no mask kinds) and
     parse_request, for scale. Target: <= 1 ms.
  2. restore: ~5 MB streams of 20-40 character text deltas (Anthropic text_delta, Chat chunks,
     Responses output_text.delta, legacy completions' text chunks, FIM's Chat-shaped chunks, Gemini's
     GenerateContentResponse chunks) whose text cites placeholders of a 50-entry map, many of them
     split across events; MB/s of SSE bytes through the stream restorer vs. just iterating the
     events. The restored text is checked against the expected one. Target: >= 50 MB/s.
  3. ttft: Restorer().stream(...) (table build included) plus feeding the events up to and
     including the first text delta, vs. passing those events through. Target: <= 0.1 ms added.

    .venv/bin/python bench/mask_bench.py            # full run (a minute or two)
    .venv/bin/python bench/mask_bench.py --quick    # fewer repetitions, 1 MB streams

Writes bench/results/<UTC stamp>-<git sha>[-dirty].mask.json. Indicative only on a shared machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))  # egress and tests.support

from egress.core.exchange import Action, Api, Decision, Finding, ParsedRequest  # noqa: E402
from egress.mask.masker import Masker, NeedleSearch  # noqa: E402
from egress.mask.restore import Restorer  # noqa: E402
from egress.wire import apis  # noqa: E402
from tests.support.masking import MASK_SECRETS, PLACEHOLDERS, events, literal_findings, sse  # noqa: E402

APIS = (
    Api.ANTHROPIC_MESSAGES,
    Api.OPENAI_CHAT,
    Api.OPENAI_RESPONSES,
    Api.OPENAI_COMPLETIONS,
    Api.FIM_COMPLETIONS,
    Api.GEMINI_STREAM,
)
# FIM answers are Chat-shaped chunks (restored by Chat's grammar); legacy completions carry `text`.
CHAT_SHAPED = (Api.OPENAI_CHAT, Api.FIM_COMPLETIONS)
NO_MASK = Decision(Action.ALLOW, ("sim",), (), (), "dec_bench", "bench")
AN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def timed(fn: Callable[[], object], reps: int, warmup: int) -> tuple[float, float]:
    """(median, mean) µs per call, after `warmup` untimed calls."""
    for _ in range(warmup):
        fn()
    ns = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        fn()
        ns.append(time.perf_counter_ns() - t0)
    return statistics.median(ns) / 1e3, statistics.fmean(ns) / 1e3


def code_lines() -> list[str]:
    return [line for p in sorted((REPO / "egress").rglob("*.py")) for line in p.read_text().splitlines()]


def secret_values(n: int, rng: random.Random) -> dict[str, str]:
    """n distinct key-shaped values (value -> rule id) that the default detection rules find."""

    def s(k: int, alphabet: str = AN) -> str:
        return "".join(rng.choice(alphabet) for _ in range(k))

    shapes = [
        (lambda: "AKIA" + s(16, B32), "aws-access-key-id"),
        (lambda: f"xoxb-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**12, 10**13)}-{s(24)}", "slack-bot-token"),
        (lambda: "sk_live_" + s(24), "stripe-live-secret-key"),
        (lambda: "sk-proj-" + s(48), "openai-project-key"),
        (lambda: "sk-ant-api03-" + s(93) + "AA", "anthropic-api-key"),
    ]
    out: dict[str, str] = {}
    while len(out) < n:
        make, rule = shapes[len(out) % len(shapes)]
        out[make()] = rule
    return out


def build_request(occurrences: list[str], lines: list[str], target: int = 200_000) -> bytes:
    """A Claude Code-shaped request of ~`target` bytes; each of `occurrences` planted once."""
    reminder = "<system-reminder>\nCLAUDE.md: run `make check` before committing.\n</system-reminder>"
    doc: dict[str, Any] = {
        "model": "claude-sonnet-4-5-20250929",
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.257; cc_entrypoint=cli"},
            {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
            {"type": "text", "text": "\n".join(lines[:120]), "cache_control": {"type": "ephemeral"}},
        ],
        "tools": [
            {"name": t, "description": f"The {t} tool.", "input_schema": {"type": "object"}}
            for t in ("Read", "Edit", "Bash", "Grep")
        ],
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": reminder}, {"type": "text", "text": "Fix the failing test."}],
            }
        ],
    }
    slots: list[tuple[dict[str, Any], str]] = []  # (dict, key) of text a value may be planted in
    pos, turn, size = 120, 0, 0
    while size < target:
        chunk = lines[pos % len(lines) : pos % len(lines) + 80]
        pos += 80
        turn += 1
        uid = f"toolu_01{turn:022d}"
        if turn % 3:
            call = {"type": "tool_use", "id": uid, "name": "Read", "input": {"file_path": f"/src/f{turn}.py"}}
            text = "\n".join(f"{i + 1:>6}\u2192{line}" for i, line in enumerate(chunk))
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": uid, "content": text}
            slots.append((result, "content"))
        else:
            old, new = "\n".join(chunk[:40]), "\n".join(chunk[40:])
            inp = {"file_path": f"/src/f{turn}.py", "old_string": old, "new_string": new}
            call = {"type": "tool_use", "id": uid, "name": "Edit", "input": inp}
            result = {"type": "tool_result", "tool_use_id": uid, "content": "The file has been updated."}
            slots.append((inp, "new_string"))
        doc["messages"].append({"role": "assistant", "content": [{"type": "text", "text": "Next:"}, call]})
        doc["messages"].append({"role": "user", "content": [result]})
        size += len(json.dumps(call, ensure_ascii=False)) + len(json.dumps(result, ensure_ascii=False)) + 90
    for i, value in enumerate(occurrences):
        block, key = slots[i * len(slots) // len(occurrences)]
        block[key] += f'\n    TOKEN_{i} = "{value}"  # planted\n'
    return json.dumps(doc, ensure_ascii=False).encode()


def cold_masker() -> Masker:
    """A masker that has never seen this value set: the first turn of a conversation. Its
    automaton would be compiled on a background thread (about 1.6 ms of CPU, once per value
    set); that thread is left out here so that compiles from earlier calls do not pile up."""
    masker = Masker(PLACEHOLDERS)
    masker._search = NeedleSearch(background=False)
    return masker


def mask_calls(body: bytes, parsed: ParsedRequest, findings: tuple[Finding, ...]) -> dict[str, Callable[[], object]]:
    api, warm = Api.ANTHROPIC_MESSAGES, Masker(PLACEHOLDERS)
    return {
        "parse_request": lambda: apis.APIS[api].parse_request(api, body),
        "no_mask": lambda: Masker(PLACEHOLDERS).apply(body, parsed, findings, NO_MASK),
        "apply_cold": lambda: cold_masker().apply(body, parsed, findings, MASK_SECRETS),
        "apply_warm": lambda: warm.apply(body, parsed, findings, MASK_SECRETS),
    }


def mask_rows(quick: bool, lines: list[str], scanner: Any) -> tuple[list[dict[str, Any]], dict[str, str]]:
    rng = random.Random(7)
    api, codec = Api.ANTHROPIC_MESSAGES, apis.APIS[Api.ANTHROPIC_MESSAGES]
    fifty, ten = secret_values(50, rng), secret_values(10, rng)
    cases = [
        ("(a) 50 distinct values, literal findings", fifty, list(fifty), False),
        ("(b) 10 values x 5, literal findings", ten, [v for _ in range(5) for v in ten], False),
        ("(a) 50 distinct values, real engine findings", fifty, list(fifty), True),
    ]
    reps, warm = (30, 5) if quick else (300, 30)
    rows, stream_map = [], {}
    for name, planted, occ, real in cases:
        body = build_request(occ, lines)
        parsed = codec.parse_request(api, body)
        findings = scanner.scan(parsed.prompt) if real else literal_findings(parsed.prompt, planted)
        secrets = sum(f.kind == "secret" for f in findings)
        masked = Masker(PLACEHOLDERS).apply(body, parsed, findings, MASK_SECRETS)
        leaked = sum(v.encode() in masked.body for v in planted)
        stream_map = stream_map or masked.placeholders
        row: dict[str, Any] = {"case": name, "body_kb": round(len(body) / 1024, 1)}
        for label, fn in mask_calls(body, parsed, findings).items():
            p50, mean = timed(fn, reps, warm)
            row[label] = {"p50_us": round(p50, 1), "mean_us": round(mean, 1)}
        row |= {"findings": len(findings), "secret_findings": secrets, "masked": masked.masked_count}
        rows.append(row | {"rewritten": masked.rewritten, "left_in_clear": leaked})
    return rows, stream_map


def stream_text(placeholders: dict[str, str], lines: list[str], total: int) -> tuple[list[str], str]:
    """Deltas of 20-40 characters (as the model writes them, placeholders in), and the restored text."""
    rng = random.Random(11)
    names = sorted(placeholders)
    parts, n = [], 0
    while n < total:
        for i, line in enumerate(lines):
            if i % 40 == 39:
                line = f'    key = "{names[(n + i) % len(names)]}"'
            parts.append(line + "\n")
            n += len(line) + 1
            if n >= total:
                break
    text = "".join(parts)
    pieces, at = [], 0
    while at < len(text):
        step = rng.randint(20, 40)
        pieces.append(text[at : at + step])
        at += step
    expected = text
    for p, v in placeholders.items():
        expected = expected.replace(p, v)
    return pieces, expected


def api_stream(api: Api, pieces: list[str]) -> tuple[list[bytes], int]:
    """The SSE events of one answer (raw bytes, as the framer hands them over), and the index of the first delta."""
    seq = iter(range(len(pieces) + 10))

    def ev(kind: str, **fields: Any) -> bytes:  # Anthropic and Responses: `type` repeats the event name
        numbered = {"sequence_number": next(seq)} if api is Api.OPENAI_RESPONSES else {}
        return sse(kind, {"type": kind, **numbered, **fields})

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        doc = {"id": "chatcmpl-B", "object": "chat.completion.chunk", "created": 1764000000, "model": "gpt-4.1"}
        return sse(None, {**doc, "choices": [choice]})

    if api is Api.ANTHROPIC_MESSAGES:
        msg = {"id": "msg_01B", "type": "message", "role": "assistant", "content": [], "stop_reason": None}
        head = [
            ev("message_start", message={**msg, "usage": {"input_tokens": 8123, "output_tokens": 1}}),
            ev("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        ]
        body = [ev("content_block_delta", index=0, delta={"type": "text_delta", "text": p}) for p in pieces]
        tail = [
            ev("content_block_stop", index=0),
            ev("message_delta", delta={"stop_reason": "end_turn"}, usage={"output_tokens": len(pieces)}),
            ev("message_stop"),
        ]
    elif api is Api.OPENAI_COMPLETIONS:
        doc = {"id": "cmpl-B", "object": "text_completion", "created": 1764000000, "model": "gpt-3.5-turbo-instruct"}

        def text(piece: str, finish: str | None = None) -> bytes:
            return sse(
                None, {**doc, "choices": [{"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}]}
            )

        head = []
        body = [text(p) for p in pieces]
        tail = [text("", "stop"), sse(None, "[DONE]")]
    elif api is Api.GEMINI_STREAM:
        usage = {"promptTokenCount": 8123, "totalTokenCount": 8123}

        def part(piece: str, finish: str | None = None) -> bytes:
            candidate: dict[str, Any] = {"content": {"parts": [{"text": piece}], "role": "model"}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            doc = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-pro"}
            return sse(None, doc | {"responseId": "rB"})

        head = []
        body = [part(p) for p in pieces]
        tail = [part("", "STOP")]
    elif api in CHAT_SHAPED:
        head = [chunk({"role": "assistant", "content": ""})]
        body = [chunk({"content": p}) for p in pieces]
        tail = [chunk({}, "stop"), sse(None, "[DONE]")]
    else:
        ids = {"item_id": "msg_b", "output_index": 0, "content_index": 0}
        head = [
            ev("response.created", response={"id": "resp_b", "object": "response", "status": "in_progress"}),
            ev("response.output_item.added", output_index=0, item={"id": "msg_b", "type": "message"}),
            ev("response.content_part.added", **ids, part={"type": "output_text", "text": ""}),
        ]
        body = [ev("response.output_text.delta", **ids, delta=p, logprobs=[]) for p in pieces]
        tail = [ev("response.completed", response={"id": "resp_b", "status": "completed"})]
    return head + body + tail, len(head)


def restored_text(api: Api, wire: bytes) -> str:
    out = []
    for name, data in events(wire):
        if api is Api.ANTHROPIC_MESSAGES and name == "content_block_delta":
            out.append(data["delta"]["text"])
        elif api in CHAT_SHAPED and data != "[DONE]":
            out.append(data["choices"][0]["delta"].get("content") or "")
        elif api is Api.OPENAI_COMPLETIONS and data != "[DONE]":
            out.append(data["choices"][0]["text"])
        elif api is Api.OPENAI_RESPONSES and name == "response.output_text.delta":
            out.append(data["delta"])
        elif api is Api.GEMINI_STREAM:
            out.append(data["candidates"][0]["content"]["parts"][0]["text"])
    return "".join(out)


def feed_all(api: Api, evs: list[bytes], placeholders: dict[str, str] | None, finish: bool = True) -> bytes:
    """The events relayed as they are (no map), or through a new stream restorer."""
    r = Restorer().stream(api, placeholders) if placeholders else None
    out = []
    for raw in evs:
        out.append(raw if r is None else r.feed(raw))
    if r is not None and finish:
        out.append(r.finish())
    return b"".join(out)


def restore_rows(quick: bool, placeholders: dict[str, str], lines: list[str]) -> list[dict[str, Any]]:
    pieces, expected = stream_text(placeholders, lines, 200_000 if quick else 1_000_000)
    cited = sum(expected.count(v) for v in placeholders.values())
    reps = 3 if quick else 7
    rows = []
    for api in APIS:
        evs, _ = api_stream(api, pieces)
        size = sum(map(len, evs))
        ok = restored_text(api, feed_all(api, evs, placeholders)) == expected
        base, _ = timed(lambda api=api, evs=evs: feed_all(api, evs, None), reps, 1)
        rest, _ = timed(lambda api=api, evs=evs: feed_all(api, evs, placeholders), reps, 1)
        row = {"api": api.value, "events": len(evs), "sse_mb": round(size / 1e6, 2), "placeholders_cited": cited}
        row |= {"identity_mb_s": round(size / base), "restore_mb_s": round(size / rest, 1)}
        rows.append(row | {"restore_us_per_event": round(rest / len(evs), 2), "restored_ok": ok})
    return rows


def ttft_rows(quick: bool, placeholders: dict[str, str], lines: list[str]) -> list[dict[str, Any]]:
    pieces, _ = stream_text(placeholders, lines, 2_000)
    reps, warm = (2_000, 200) if quick else (5_000, 500)
    rows = []
    for api in APIS:
        evs, first = api_stream(api, pieces)
        lead = evs[: first + 1]
        base, _ = timed(lambda api=api, lead=lead: feed_all(api, lead, None), reps, warm)
        rest, _ = timed(lambda api=api, lead=lead: feed_all(api, lead, placeholders, False), reps, warm)
        build, _ = timed(lambda api=api: Restorer().stream(api, placeholders), reps, warm)
        row = {"api": api.value, "events": len(lead), "passthrough_us": round(base, 2), "restorer_us": round(rest, 1)}
        rows.append(row | {"of_which_stream_build_us": round(build, 1), "added_us": round(rest - base, 1)})
    return rows


def table(title: str, rows: list[dict[str, Any]], note: str) -> None:
    """A markdown table of `rows` (dict keys as the header; nested p50/mean cells as `p50 / mean`)."""
    print(f"\n{title}\n\n| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for r in rows:
        cells = [f"{v['p50_us']:.0f} / {v['mean_us']:.0f}" if isinstance(v, dict) else str(v) for v in r.values()]
        print("| " + " | ".join(cells) + " |")
    print(note)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, 1 MB streams (a smoke run)")
    args = ap.parse_args()
    from egress.app import build_scanner
    from egress.config import load_config

    lines = code_lines()
    mask, stream_map = mask_rows(args.quick, lines, build_scanner(load_config(None)))
    table(
        "1. mask stage on a Claude Code-shaped request (µs per call: median / mean)", mask, "Target: apply <= 1000 µs."
    )
    restore = restore_rows(args.quick, stream_map, lines)
    table(f"2. stream restoration, {len(stream_map)}-entry map", restore, "Target: restore_mb_s >= 50.")
    ttft = ttft_rows(args.quick, stream_map, lines)
    table("3. time to first token (µs, median)", ttft, "Target: added_us <= 100.")

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD")
    dirty = "-dirty" if git("status", "--porcelain", "--", "egress") else ""
    stamp = dt.datetime.now(dt.UTC)
    out = BENCH / "results" / f"{stamp:%Y-%m-%dT%H%M%SZ}-{sha}{dirty}.mask.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"git": sha + dirty, "utc": stamp.isoformat(), "quick": args.quick, "python": sys.version.split()[0]}
    out.write_text(json.dumps(doc | {"mask": mask, "restore": restore, "ttft": ttft}, indent=2) + "\n")
    print(f"\nresults: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
