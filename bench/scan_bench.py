"""Inspection engine throughput, side by side with detect-secrets, in one run.

    python bench/scan_bench.py [--mb 20]

Measures, on one core:
  * MB/s over real source code (the Python standard library installed on this machine), all
    detectors on, cold cache (every text new);
  * the inspect stage on a 200 KB agent request (Claude Code shape), cold;
  * the same conversation resent with 2 KB of new content (warm cache: only new text is scanned);
  * detect-secrets (its default plugins) on the same source text, for the ratio.
Prints a markdown table; --json writes the numbers.

    python bench/scan_bench.py --dense

Secret-dense input instead (issue #13): merging 8,000 overlapping matches, one 531 KB text of
16,000 `glpat-` tokens (past the findings cap: one secret-dense finding; and with the cap raised
so every token is its own finding), and an 8 KB text holding 200 AWS access keys. It uses only
what older versions also have, so it can be run against a checkout of an earlier commit
(PYTHONPATH=<checkout>) to compare before and after in one sitting.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import sysconfig
import time
from pathlib import Path

from egress.app import build_scanner
from egress.config import load_config
from egress.core.exchange import Api
from egress.detect.scan import Scanner, TextScanner
from egress.wire.apis import APIS

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.body import build  # noqa: E402


def source_texts(limit_bytes: int) -> list[str]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    out, total = [], 0
    for path in sorted(stdlib.rglob("*.py")):
        if "test" in path.parts or "site-packages" in path.parts:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        out.append(text)
        total += len(text.encode())
        if total >= limit_bytes:
            break
    return out


def agent_request(size: int, seed: int = 0) -> bytes:
    return build(stream=True, target=size)


def best_of(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def dense(matcher: object) -> dict[str, float]:
    """Secret-dense cases, in ms (median of a few runs; the slow old paths run once)."""
    import inspect
    import random
    import string

    from egress.detect.engine import Match
    from egress.detect.rules import Rule
    from egress.detect.scan import merge

    rng = random.Random(13)
    alnum = string.ascii_letters + string.digits
    glpat = " ".join("glpat-" + "".join(rng.choice(alnum) for _ in range(26)) for _ in range(16_000))
    key = string.ascii_uppercase + "234567"
    aws = "".join(f"aws key id {i:03d}: AKIA" + "".join(rng.choice(key) for _ in range(16)) + "\n" for i in range(200))
    a, b = Rule(id="a", confidence=0.9), Rule(id="b", confidence=0.8)
    matches = []
    for i in range(4_000):  # two rules of one kind overlapping on every value
        matches += [Match(a, i * 30, i * 30 + 26, "v"), Match(b, i * 30 + 6, i * 30 + 26, "v")]
    rng.shuffle(matches)

    def timed(fn, repeat: int) -> float:
        return statistics.median(best_of(fn, 1) for _ in range(repeat)) * 1000

    # Before the findings cap (and the near-linear merge) the slow paths are run once only.
    capped = "max_findings" in inspect.signature(TextScanner).parameters
    repeat = 3 if capped else 1
    rows = {"merge_8000_ms": timed(lambda: merge(matches), repeat)}
    rows["glpat_531kb_ms"] = timed(lambda: TextScanner(matcher, cache_chars=0).scan_text(glpat), repeat)  # type: ignore[arg-type]
    if capped:
        uncapped = TextScanner(matcher, cache_chars=0, max_findings=10**6)  # type: ignore[arg-type, call-arg]
        rows["glpat_531kb_uncapped_ms"] = timed(lambda: uncapped.scan_text(glpat), 1)
    rows["aws_8kb_200_keys_ms"] = timed(lambda: TextScanner(matcher, cache_chars=0).scan_text(aws), 7)  # type: ignore[arg-type]
    rows["glpat_text_bytes"] = float(len(glpat))
    rows["aws_text_bytes"] = float(len(aws))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=float, default=20.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--dense", action="store_true", help="the secret-dense cases only")
    args = parser.parse_args()
    config = load_config(None, env={"HOME": "/tmp"})
    if args.dense:
        rows = dense(build_scanner(config).text_scanner.matcher)
        print("| secret-dense case | ms |\n|---|---|")
        for name, value in rows.items():
            print(f"| {name} | {value:.1f} |")
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
        return

    texts = source_texts(int(args.mb * 1e6))
    size = sum(len(t.encode()) for t in texts)

    matcher = build_scanner(config).text_scanner.matcher  # compiled once, as at gateway start

    def scan_all() -> None:
        scanner = TextScanner(matcher)  # a fresh cache: every text is new
        for text in texts:
            scanner.scan_text(text)

    egress_s = best_of(scan_all, 3)

    codec = APIS[Api.ANTHROPIC_MESSAGES]
    body = agent_request(200_000)
    parsed = codec.parse_request(Api.ANTHROPIC_MESSAGES, body)

    scanner_for_cold = [Scanner(TextScanner(matcher)) for _ in range(7)]
    cold = []
    for s in scanner_for_cold:
        t0 = time.perf_counter()
        s.scan(parsed.prompt)
        cold.append(time.perf_counter() - t0)

    warm_scanner = Scanner(TextScanner(matcher))
    warm_scanner.scan(parsed.prompt)
    doc = json.loads(body)
    warm = []
    for i in range(20):
        doc["messages"].append(
            {"role": "user", "content": [{"type": "text", "text": f"turn {i}: " + "new text " * 227}]}
        )
        resent = codec.parse_request(Api.ANTHROPIC_MESSAGES, json.dumps(doc).encode())
        t0 = time.perf_counter()
        warm_scanner.scan(resent.prompt)
        warm.append(time.perf_counter() - t0)

    rows = {
        "egress_mb_s": size / 1e6 / egress_s,
        "request_200kb_ms": statistics.median(cold) * 1000,
        "resent_2kb_new_ms": statistics.median(warm) * 1000,
        "source_mb": size / 1e6,
    }
    try:
        from detect_secrets.core.scan import scan_line  # noqa: F401
        from detect_secrets.settings import default_settings

        def ds_all() -> None:
            with default_settings():
                from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class  # noqa: F401
                from detect_secrets.core.scan import _process_line_based_plugins

                for text in texts:
                    list(_process_line_based_plugins(lines=list(enumerate(text.splitlines(), 1)), filename="x.py"))

        ds_s = best_of(ds_all, 1)
        rows["detect_secrets_mb_s"] = size / 1e6 / ds_s
        rows["ratio"] = rows["egress_mb_s"] / rows["detect_secrets_mb_s"]
    except ImportError:
        rows["detect_secrets_mb_s"] = float("nan")

    print("| measure | value |\n|---|---|")
    print(f"| source code scanned | {rows['source_mb']:.1f} MB (Python stdlib, tests excluded) |")
    print(f"| egress, all detectors, cold | {rows['egress_mb_s']:.1f} MB/s |")
    print(f"| detect-secrets 1.5.0, default plugins | {rows['detect_secrets_mb_s']:.2f} MB/s |")
    if "ratio" in rows:
        print(f"| ratio | {rows['ratio']:.0f}x |")
    print(f"| 200 KB agent request, cold | {rows['request_200kb_ms']:.2f} ms |")
    print(f"| resent conversation, 2 KB new | {rows['resent_2kb_new_ms']:.3f} ms |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
