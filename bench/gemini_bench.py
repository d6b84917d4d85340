"""Cost of a Gemini request's own stages beside an Anthropic one's, on bodies of the same size.

The Gemini API adds its own parser (text locations, fail-closed walks of unknown parts) and the
route completion from the path; inspection and masking are the same code for every API. Measured
in-process, in CPU time (time.process_time: the machine is shared), the two APIs interleaved
round by round, the median of the rounds shown:

  parse    APIS[api].parse_request on a ~32 KB Claude Code body (bench/body.py) and a ~32 KB
           Gemini CLI-shaped body (bench/translate_bench.gemini_body), plus from_route for Gemini;
  inspect  the real scanner (default detection) over each parsed prompt, its content cache warm
           (the turns of one conversation repeat their texts) and with no cache (a new text);
  both     parse and inspect (cache warm), what the gateway does before its policy on a turn.

    .venv/bin/python bench/gemini_bench.py            # 15 rounds
    .venv/bin/python bench/gemini_bench.py --quick    # 5 rounds

Writes bench/results/<UTC stamp>-<git sha>[-dirty].gemini.json. Indicative only on a shared machine.
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

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))

from bench.body import build as claude_code_body  # noqa: E402
from bench.translate_bench import gemini_body  # noqa: E402
from egress.app import build_scanner  # noqa: E402
from egress.config import load_config  # noqa: E402
from egress.core.exchange import Api, ParsedRequest  # noqa: E402
from egress.wire.apis import APIS  # noqa: E402

PATH = "/v1beta/models/gemini-2.5-pro:streamGenerateContent"


def parse(api: Api, body: bytes) -> ParsedRequest:
    spec = APIS[api]
    parsed = spec.parse_request(api, body)
    return spec.from_route(parsed, PATH, "alt=sse") if spec.from_route is not None else parsed


def cpu_us(fn: Callable[[], object], calls: int) -> float:
    t0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - t0) / calls * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rounds, calls = (5, 30) if args.quick else (15, 60)
    config = load_config(None)
    scanner = build_scanner(config)  # its content cache warm: a conversation's repeated turns
    cold = build_scanner(config.model_copy(update={"detection": config.detection.model_copy(update={"cache_mb": 0})}))
    bodies = {Api.ANTHROPIC_MESSAGES: claude_code_body(stream=True), Api.GEMINI_STREAM: gemini_body()}
    prompts = {api: parse(api, body).prompt for api, body in bodies.items()}
    stages: dict[str, Callable[[Api], Callable[[], object]]] = {
        "parse": lambda api: lambda: parse(api, bodies[api]),
        "inspect": lambda api: lambda: scanner.scan(prompts[api]),
        "inspect_uncached": lambda api: lambda: cold.scan(prompts[api]),
        "both": lambda api: lambda: scanner.scan(parse(api, bodies[api]).prompt),
    }
    samples: dict[tuple[str, Api], list[float]] = {(s, a): [] for s in stages for a in bodies}
    for fn in (stages["both"](api) for api in bodies):
        cpu_us(fn, calls)  # warm-up
    for _ in range(rounds):
        for stage, make in stages.items():
            for api in bodies:
                samples[(stage, api)].append(cpu_us(make(api), calls))
    rows: list[dict[str, Any]] = []
    for api, body in bodies.items():
        row: dict[str, Any] = {"api": api.value, "body_kb": round(len(body) / 1024, 1)}
        row["segments"] = len(prompts[api].segments)
        row["chars"] = prompts[api].chars
        for stage in stages:
            row[f"{stage}_us"] = round(statistics.median(samples[(stage, api)]), 1)
        rows.append(row)
    print("\n| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")

    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD")
    dirty = "-dirty" if git("status", "--porcelain", "--", "egress") else ""
    stamp = dt.datetime.now(dt.UTC)
    out = BENCH / "results" / f"{stamp:%Y-%m-%dT%H%M%SZ}-{sha}{dirty}.gemini.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"git": sha + dirty, "utc": stamp.isoformat(), "rounds": rounds, "calls": calls, "rows": rows}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nresults: {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
