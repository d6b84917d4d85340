"""Cost of cross-API translation (a Messages, Responses or Gemini client, a Chat Completions upstream).

Calls egress's own code in-process (no network, no event loop), timing every call with
time.perf_counter_ns after a warm-up, and reports medians (p50) and p99 in µs.
Each figure is taken in 10 groups of samples, one after the other; the p50 shown is the best
group's median (the machine is shared and other work only adds time), with the range over the
groups in the results file; p99 is over all samples.

  1. per event: `StreamTranslation.feed` for every event of every recorded Chat stream
     (tests/fixtures/recorded/openai-chat, 12 real captures), and of two synthetic streams: 2,000
     text deltas of 3-6 characters, and a tool call streamed in 400 argument fragments. Beside
     it, for scale: only parsing the same events' JSON (orjson.loads), which any gateway that
     reads a stream pays.
  2. first event (time to first token): `translator.stream()` plus `feed` of the first chunk
     (the role chunk: message_start / response.created + in_progress), and of the chunks up to
     and including the first text delta. Target: <= 200 µs added to time to first token.
  3. request: `translator.request_body` on a ~32 KB Claude Code body (bench/body.py) and a
     ~32 KB Codex-shaped body and a ~32 KB Gemini CLI-shaped body; also on the path to the
     first token (once per request).

    .venv/bin/python bench/translate_bench.py            # full run (about a minute)
    .venv/bin/python bench/translate_bench.py --quick    # fewer repetitions

Writes bench/results/<UTC stamp>-<git sha>[-dirty].translate.json. Indicative only on a shared
machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))  # egress, bench and tests.support

from bench.body import build as claude_code_body  # noqa: E402
from egress.core.exchange import Api  # noqa: E402
from egress.wire.apis import translator_for  # noqa: E402
from egress.wire.sse import SseDecoder  # noqa: E402
from egress.wire.translate import Translator  # noqa: E402
from tests.support.simulator import fixtures_dir  # noqa: E402

APIS = (Api.ANTHROPIC_MESSAGES, Api.OPENAI_RESPONSES, Api.GEMINI_STREAM)
GROUPS = 10


def translator(api: Api, body: bytes) -> Translator:
    t = translator_for(api, Api.OPENAI_CHAT)
    assert t is not None
    t.request_body(body, "local-model")
    return t


def percentiles(sample: Callable[[], list[int]]) -> dict[str, Any]:
    """Take GROUPS samples one after the other. p50: the best group's median (the machine is
    shared: other work only ever adds), with the range over groups; p99: over all samples."""
    groups = [sample() for _ in range(GROUPS)]
    medians = sorted(statistics.median(g) / 1e3 for g in groups)
    every = sorted(ns for g in groups for ns in g)
    return {
        "p50_us": round(medians[0], 2),
        "p50_range_us": [round(medians[0], 2), round(medians[-1], 2)],
        "p99_us": round(every[int(len(every) * 0.99)] / 1e3, 2),
    }


def timed(fn: Callable[[], object], reps: int, warmup: int) -> Callable[[], list[int]]:
    """A sampler: `reps` timed calls of `fn` (after `warmup` untimed ones on the first use)."""
    for _ in range(warmup):
        fn()

    def sample() -> list[int]:
        ns = []
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            fn()
            ns.append(time.perf_counter_ns() - t0)
        return ns

    return sample


# --- upstream streams ------------------------------------------------------------------------------


def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    doc = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "qwen2.5-coder-7b-instruct",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def tail() -> list[bytes]:
    usage = {"prompt_tokens": 8000, "completion_tokens": 2000, "total_tokens": 10000}
    last = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": usage,
    }
    return [b"data: " + orjson.dumps(last) + b"\n\n", b"data: [DONE]\n\n"]


def text_stream(n: int) -> list[bytes]:
    words = "the quick brown fox jumps over a lazy dog while egress keeps every secret".split()
    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": " " + words[i % len(words)][: 3 + i % 4]}) for i in range(n)]
    return events + [chunk({}, "stop"), *tail()]


def tool_stream(n: int) -> list[bytes]:
    arguments = json.dumps(
        {"command": "grep -rn 'def ' egress/ | head -n 200", "timeout": 120000, "description": "x" * 1500}
    )
    size = max(len(arguments) // n, 1)
    pieces = [arguments[i : i + size] for i in range(0, len(arguments), size)]
    head = {"index": 0, "id": "call_bench", "type": "function", "function": {"name": "Bash", "arguments": ""}}
    events = [chunk({"role": "assistant", "content": None}), chunk({"tool_calls": [head]})]
    events += [chunk({"tool_calls": [{"index": 0, "function": {"arguments": p}}]}) for p in pieces]
    return events + [chunk({}, "tool_calls"), *tail()]


def streams() -> dict[str, list[bytes]]:
    out = {}
    for path in sorted((fixtures_dir() / "openai-chat").glob("*.sse")):
        out[path.stem] = SseDecoder().feed(path.read_bytes())
    out["synthetic text, 2000 deltas"] = text_stream(2000)
    out["synthetic tool call, 400 fragments"] = tool_stream(400)
    return out


# --- 1. per event ----------------------------------------------------------------------------------


def per_event(t: Translator, events: list[bytes], rounds: int) -> list[int]:
    """ns of every feed() call but the first (the first is measured in part 2)."""
    ns: list[int] = []
    for _ in range(rounds):
        stream = t.stream()
        stream.feed(events[0])
        for event in events[1:]:
            t0 = time.perf_counter_ns()
            stream.feed(event)
            ns.append(time.perf_counter_ns() - t0)
        stream.finish()
    return ns


def parse_only(events: list[bytes], rounds: int) -> list[int]:
    ns: list[int] = []
    for _ in range(rounds):
        for event in events[1:]:
            t0 = time.perf_counter_ns()
            payload = event[5:-2].strip()
            if payload != b"[DONE]":
                orjson.loads(payload)
            ns.append(time.perf_counter_ns() - t0)
    return ns


def event_rows(quick: bool, bodies: dict[Api, bytes]) -> list[dict[str, Any]]:
    rounds = 2 if quick else 10  # stream passes per group
    all_streams = streams()
    per_event(translator(Api.ANTHROPIC_MESSAGES, bodies[Api.ANTHROPIC_MESSAGES]), all_streams["parse_nothing"], 50)
    rows = []
    for name, events in all_streams.items():
        row: dict[str, Any] = {"stream": name, "events": len(events)}
        row["parse only"] = percentiles(lambda events=events: parse_only(events, rounds))
        for api in APIS:
            t = translator(api, bodies[api])
            row[api.value] = percentiles(lambda t=t, events=events: per_event(t, events, rounds))
        rows.append(row)
    return rows


# --- 2. first event ---------------------------------------------------------------------------------


def first_rows(quick: bool, bodies: dict[Api, bytes]) -> list[dict[str, Any]]:
    reps, warm = (300, 300) if quick else (2_000, 2_000)  # per group
    events = SseDecoder().feed((fixtures_dir() / "openai-chat" / "parse_nothing.sse").read_bytes())
    first_text = next(i for i, e in enumerate(events) if b'"content":"I' in e)
    rows = []
    for api in APIS:
        t = translator(api, bodies[api])

        def first_event(t: Translator = t) -> None:
            t.stream().feed(events[0])

        def first_token(t: Translator = t) -> None:
            stream = t.stream()
            for event in events[: first_text + 1]:
                stream.feed(event)

        rows.append(
            {
                "api": api.value,
                "first event (stream() + role chunk)": percentiles(timed(first_event, reps, warm)),
                f"first text delta ({first_text + 1} chunks)": percentiles(timed(first_token, reps, warm)),
            }
        )
    return rows


# --- 3. request -------------------------------------------------------------------------------------


def codex_body(target: int = 32 * 1024) -> bytes:
    """A Codex-shaped Responses request of about `target` bytes: instructions, AGENTS.md and
    environment items, reasoning items, exec_command calls with file-read outputs, an apply_patch."""
    lines = "\n".join(
        f"{n:>6}\tdef handler_{n}(request):  # synthetic source line for the benchmark" for n in range(1, 60)
    )
    items: list[dict[str, Any]] = [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "<permissions>workspace-write</permissions>"}],
        },
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "# AGENTS.md instructions\n" + "Be careful. " * 40}],
        },
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "fix the failing test in tests/test_api.py"}],
        },
    ]
    k = 0
    while len(orjson.dumps(items)) < target - 4000:
        items.append({"type": "reasoning", "id": f"rs_{k}", "summary": [], "encrypted_content": "gAAAA" + "x" * 400})
        items.append(
            {
                "type": "function_call",
                "call_id": f"call_{k}",
                "name": "exec_command",
                "arguments": json.dumps({"cmd": f"sed -n 1,60p src/m{k}.py"}),
            }
        )
        items.append({"type": "function_call_output", "call_id": f"call_{k}", "output": lines})
        k += 1
    items.append(
        {
            "type": "custom_tool_call",
            "call_id": "call_p",
            "name": "apply_patch",
            "input": "*** Begin Patch\n*** Update File: a.py\n@@\n-a\n+b\n*** End Patch",
        }
    )
    items.append({"type": "custom_tool_call_output", "call_id": "call_p", "output": "Success."})
    tools = [
        {
            "type": "function",
            "name": "exec_command",
            "description": "Runs a command.",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
        },
        {
            "type": "custom",
            "name": "apply_patch",
            "description": "Edit files.",
            "format": {"type": "grammar", "syntax": "lark", "definition": "start: patch"},
        },
        {"type": "web_search"},
    ]
    doc = {
        "model": "gpt-5-codex",
        "instructions": "You are Codex. " * 200,
        "input": items,
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": True,
        "reasoning": {"effort": "medium"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "c",
    }
    return orjson.dumps(doc)


def gemini_body(target: int = 32 * 1024) -> bytes:
    """A Gemini CLI-shaped streamGenerateContent request of about `target` bytes: a system
    instruction, function declarations, and turns of read_file calls (with thought signatures)
    and their file contents."""
    lines = "\n".join(f"def handler_{n}(request):  # synthetic source line for the benchmark" for n in range(1, 60))
    declaration = {
        "name": "read_file",
        "description": "Reads a file",
        "parametersJsonSchema": {"type": "object", "properties": {"file_path": {"type": "string"}}},
    }
    contents: list[dict[str, Any]] = [{"role": "user", "parts": [{"text": "Explain the handlers in src/."}]}]
    n = 0
    while len(orjson.dumps(contents)) < target - 2_000:
        n += 1
        call = {
            "functionCall": {"name": "read_file", "args": {"file_path": f"src/h{n}.py"}},
            "thoughtSignature": "c2ln" * 40,
        }
        contents.append({"role": "model", "parts": [{"text": f"Reading h{n}."}, call]})
        result = {"functionResponse": {"name": "read_file", "response": {"output": lines}}}
        contents.append({"role": "user", "parts": [result]})
    doc = {
        "systemInstruction": {"parts": [{"text": "You are an interactive CLI agent. " * 20}]},
        "contents": contents,
        "tools": [{"functionDeclarations": [declaration]}],
        "generationConfig": {"temperature": 1, "topP": 0.95, "thinkingConfig": {"includeThoughts": True}},
    }
    return orjson.dumps(doc)


def request_rows(quick: bool, bodies: dict[Api, bytes]) -> list[dict[str, Any]]:
    reps, warm = (50, 50) if quick else (300, 300)  # per group
    rows = []
    for api in APIS:
        body = bodies[api]
        t = translator_for(api, Api.OPENAI_CHAT)
        assert t is not None
        parse = timed(lambda body=body: orjson.loads(body), reps, warm)
        translate = timed(lambda t=t, body=body: t.request_body(body, "local-model"), reps, warm)
        # What the gateway does when nothing was masked: the client's body is already parsed.
        parsed = orjson.loads(body)
        reuse = timed(lambda t=t, parsed=parsed: t.request_body(b"", "local-model", document=parsed), reps, warm)
        rows.append(
            {
                "api": api.value,
                "body_kb": round(len(body) / 1024, 1),
                "orjson.loads only": percentiles(parse),
                "request_body": percentiles(translate),
                "request_body, parsed document": percentiles(reuse),
            }
        )
    return rows


# --- output -----------------------------------------------------------------------------------------


def table(title: str, rows: list[dict[str, Any]], note: str) -> None:
    print(f"\n{title}\n\n| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for r in rows:
        cells = [f"{v['p50_us']:.2f} / {v['p99_us']:.1f}" if isinstance(v, dict) else str(v) for v in r.values()]
        print("| " + " | ".join(cells) + " |")
    print(note)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    args = ap.parse_args()
    bodies = {
        Api.ANTHROPIC_MESSAGES: claude_code_body(stream=True),
        Api.OPENAI_RESPONSES: codex_body(),
        Api.GEMINI_STREAM: gemini_body(),
    }

    events = event_rows(args.quick, bodies)
    table(
        "1. per event, µs (p50 / p99)",
        events,
        "Every feed() but the first; 'parse only' is orjson.loads of the same events.",
    )
    first = first_rows(args.quick, bodies)
    table("2. time to first token, µs (p50 / p99)", first, "Target: <= 200 µs added to time to first token.")
    request = request_rows(args.quick, bodies)
    table("3. request translation, µs (p50 / p99)", request, "Once per request, before the upstream is called.")

    sha = git("rev-parse", "--short", "HEAD")
    dirty = "-dirty" if git("status", "--porcelain", "--", "egress/wire", "bench/translate_bench.py") else ""
    stamp = dt.datetime.now(dt.UTC)
    out = BENCH / "results" / f"{stamp:%Y-%m-%dT%H%M%SZ}-{sha}{dirty}.translate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"git": sha + dirty, "utc": stamp.isoformat(), "quick": args.quick, "python": sys.version.split()[0]}
    out.write_text(json.dumps(doc | {"per_event": events, "first_token": first, "request": request}, indent=2) + "\n")
    print(f"\nresults: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
