"""Code fingerprints (egress.provenance, issue #15): quality, indexing speed, memory, lookup cost.

    python bench/provenance_bench.py [--repo DIR] [--public DIR] [--samples 200] [--json F]
    python bench/provenance_bench.py --quick      # a small run: does it still work?

The "proprietary" repository is an installed package's source (default: mypy, ~130k lines of
Python and stubs), indexed as a plain directory; another package (default: setuptools) is
indexed as public code. Then:

  * quality: excerpts of 5, 10, 20 and 50 lines drawn from the indexed files, each under every
    transformation an agent or a person applies (reindent; rename identifiers; remove comments;
    add comments; line-numbered tool output; a unified diff; embedded in a larger prompt; all of
    them at once), looked up; recall = share of excerpts attributed to the repository;
  * false matches: excerpts of the same sizes from code that is not indexed (the standard
    library, other installed packages): share with any match;
  * indexing: lines per minute on one core (this process), from the directory to fingerprints;
  * memory: the lookup's arrays per million indexed lines, and the process's RSS growth;
  * lookup cost on the ~32 KB Claude Code request of bench/body.py: the inspect stage (bundled
    rules) with and without the code lookup, every text new (cold), and a resent conversation
    with one new tool result (warm: the per-segment cache); p50 of the added time.

An excerpt counts only if at least half of its lines are code (not blank, not a comment, not a
docstring, not an import): a run of blank lines, prose, a licence header or an import list has
nothing to recognise (imports are boilerplate, which by design never counts). Random but seeded: the same
excerpts on every run.
"""

from __future__ import annotations

import argparse
import builtins
import copy
import difflib
import json
import keyword
import os
import random
import re
import statistics
import sys
import sysconfig
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from egress.app import build_matcher
from egress.config import load_config
from egress.core.exchange import Api
from egress.core.provenance import IndexedFile
from egress.detect.scan import Scanner, TextScanner
from egress.provenance.indexer import changed_files, fingerprint_files
from egress.provenance.lookup import Lookup, LookupSettings
from egress.provenance.sources import DirectorySource
from egress.provenance.tokens import Normaliser, lexer_named
from egress.wire.anthropic import parse_request

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.body import build  # noqa: E402

SITE = Path(sysconfig.get_paths()["purelib"])
STDLIB = Path(sysconfig.get_paths()["stdlib"])
SIZES = (5, 10, 20, 50)
REPO = "proprietary"
PYTHON = Normaliser(lexer_named("python"))
NEWLINE = PYTHON.tokens("a\nb").values[1]

_KEEP = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | {"self", "cls"}
_NAME = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]*\b")
_COMMENT = re.compile(r"^(\s*)#.*$")
_TRAILING = re.compile(r"\s+#[^'\"]*$")


# --- transformations ---------------------------------------------------------------------------


def reindent(text: str, rng: random.Random) -> str:
    """Four-space indentation to two spaces (or tabs)."""
    unit = rng.choice(["  ", "\t"])
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        out.append(unit * ((len(line) - len(stripped)) // 4) + " " * ((len(line) - len(stripped)) % 4) + stripped)
    return "\n".join(out)


def rename(text: str, rng: random.Random) -> str:
    """Every identifier that is not a keyword or builtin renamed, consistently."""
    names: dict[str, str] = {}

    def swap(m: re.Match[str]) -> str:
        word = m.group(0)
        if word in _KEEP:
            return word
        if word not in names:
            names[word] = f"{rng.choice(['val', 'item', 'node', 'acc', 'tmp', 'obj'])}_{len(names)}"
        return names[word]

    return _NAME.sub(swap, text)


def remove_comments(text: str, rng: random.Random) -> str:
    out = []
    for line in text.split("\n"):
        if _COMMENT.match(line):
            continue
        out.append(_TRAILING.sub("", line))
    return "\n".join(out)


def add_comments(text: str, rng: random.Random) -> str:
    out = []
    for i, line in enumerate(text.split("\n")):
        if i % 3 == 1 and line.strip():
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# {rng.choice(['check this', 'TODO: simplify', 'see the ticket', 'edge case'])}")
        out.append(line)
    return "\n".join(out)


def numbered(text: str, rng: random.Random) -> str:
    """As Claude Code's Read tool shows a file: `     12→code`."""
    first = rng.randint(1, 900)
    return "\n".join(f"{first + i:>6}→{line}" for i, line in enumerate(text.split("\n")))


def as_diff(text: str, rng: random.Random) -> str:
    """The excerpt as the new side of a unified diff in which two of its lines changed."""
    new = text.split("\n")
    old = list(new)
    for i in rng.sample(range(len(old)), k=min(2, len(old))):
        old[i] = old[i] + "  # old"
    hunk = difflib.unified_diff(old, new, "a/src/module.py", "b/src/module.py", n=len(new), lineterm="")
    return "diff --git a/src/module.py b/src/module.py\n" + "\n".join(hunk)


def embed(text: str, rng: random.Random, filler: list[list[str]] | None = None) -> str:
    """Inside a larger prompt: prose, the code in a fence, more prose and unrelated code."""
    other = "\n".join(rng.choice(filler)) if filler else ""
    return (
        "I am refactoring this part and the tests started failing after the last change. "
        "Could you look at the function below and tell me what is wrong with it?\n\n"
        f"```python\n{text}\n```\n\n"
        "For reference, this is how the helper it calls is written elsewhere:\n\n"
        f"```python\n{other}\n```\nThanks, and please keep the public interface unchanged."
    )


def combined(text: str, rng: random.Random, filler: list[list[str]] | None = None) -> str:
    text = add_comments(remove_comments(rename(reindent(text, rng), rng), rng), rng)
    return embed(numbered(text, rng), rng, filler)


def combined_diff(text: str, rng: random.Random, filler: list[list[str]] | None = None) -> str:
    return embed(as_diff(rename(reindent(remove_comments(text, rng), rng), rng), rng), rng, filler)


# --- excerpts ------------------------------------------------------------------------------------


def code_lines(text: str) -> set[int]:
    """The 1-based lines holding code: a token other than a comment, a docstring or a line break,
    outside import statements (import lists are boilerplate: by design they never count)."""
    tokens = PYTHON.tokens(text)
    imports: set[int] = set()
    open_list = False
    for number, line in enumerate(text.split("\n"), 1):
        stripped = line.strip()
        if open_list or stripped.startswith(("import ", "from ")):
            imports.add(number)
            open_list = (open_list or stripped.endswith("(")) and not stripped.endswith(")")
    return set(tokens.lines[tokens.values != NEWLINE].tolist()) - imports


def excerpts(files: list[Path], size: int, count: int, rng: random.Random) -> list[str]:
    """`count` excerpts of `size` consecutive lines, at least half of them code."""
    texts: dict[Path, tuple[list[str], set[int]]] = {}
    out: list[str] = []
    attempts = 0
    while len(out) < count and attempts < count * 50:
        attempts += 1
        path = rng.choice(files)
        if path not in texts:
            text = path.read_text("utf-8", "replace")
            texts[path] = (text.split("\n"), code_lines(text))
        lines, code = texts[path]
        if len(lines) < size + 1:
            continue
        start = rng.randrange(0, len(lines) - size)
        if sum(1 for n in range(start + 1, start + size + 1) if n in code) * 2 >= size:
            out.append("\n".join(lines[start : start + size]))
    return out


def python_files(root: Path, skip: tuple[Path, ...] = ()) -> list[Path]:
    found: list[Path] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in ("__pycache__", "site-packages", "test", "tests"))
        if any(Path(folder).is_relative_to(s) for s in skip):
            continue
        found.extend(Path(folder, n) for n in sorted(names) if n.endswith(".py"))
    return found


# --- measurements -------------------------------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def index_dir(root: Path) -> tuple[list[IndexedFile], float, float]:
    """The fingerprints of a directory, with the CPU and wall seconds it took (one core)."""
    cpu, wall = time.process_time(), time.perf_counter()
    source = DirectorySource(root)
    _, todo = changed_files(source, {})
    files = list(fingerprint_files(source, todo))
    return files, time.process_time() - cpu, time.perf_counter() - wall


def quality(lookup: Lookup, own: list[Path], others: list[Path], samples: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    filler = [excerpts(others, 12, 1, rng)[0].split("\n") for _ in range(20)]
    transforms: dict[str, Callable[[str, random.Random], str]] = {
        "none": lambda t, r: t,
        "reindent": reindent,
        "rename": rename,
        "remove comments": remove_comments,
        "add comments": add_comments,
        "line numbers": numbered,
        "unified diff": as_diff,
        "embedded": lambda t, r: embed(t, r, filler),
        "combined": lambda t, r: combined(t, r, filler),
        "combined (diff)": lambda t, r: combined_diff(t, r, filler),
    }
    recall: dict[str, dict[int, float]] = {}
    for size in SIZES:
        drawn = excerpts(own, size, samples, rng)
        for name, transform in transforms.items():
            hits = sum(1 for t in drawn if any(m.repo == REPO for m in lookup.match(transform(t, rng))))
            recall.setdefault(name, {})[size] = hits / len(drawn)
    false: dict[int, float] = {}
    for size in SIZES:
        drawn = excerpts(others, size, samples * 2, rng)
        false[size] = sum(1 for t in drawn if lookup.match(t)) / len(drawn)
    return {"recall": recall, "false_matches": false}


def lookup_cost(lookup: Lookup, runs: int) -> dict[str, float]:
    """p50 ms of the inspect stage on the 32 KB Claude Code body, without and with the lookup
    (with the line-shape pre-check, and without it: every text lexed whole, as before it)."""
    whole = copy.copy(lookup)
    whole.shapes = None  # every text lexed whole
    matcher = build_matcher(load_config(None))
    body = build(False)
    prompt = parse_request(Api.ANTHROPIC_MESSAGES, body).prompt
    doc = json.loads(body)

    def cold(code: Lookup | None) -> float:
        times = []
        for _ in range(runs):
            scanner = Scanner(TextScanner(matcher, code=code.match if code else None))
            t = time.perf_counter()
            scanner.scan(prompt)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000

    def warm(code: Lookup | None) -> float:
        scanner = Scanner(TextScanner(matcher, code=code.match if code else None))
        scanner.scan(prompt)
        times = []
        for i in range(runs):
            turn = json.loads(json.dumps(doc))
            turn["messages"].append({"role": "user", "content": f"turn {i}: " + "why does the test fail? " * 80})
            resent = parse_request(Api.ANTHROPIC_MESSAGES, json.dumps(turn).encode()).prompt
            t = time.perf_counter()
            scanner.scan(resent)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000

    base_cold, code_cold, base_warm, code_warm = cold(None), cold(lookup), warm(None), warm(lookup)
    whole_cold = cold(whole)
    texts = [s.text for s in prompt.segments]
    match_ms: list[float] = []
    whole_ms: list[float] = []
    match_cpu: list[float] = []
    whole_cpu: list[float] = []
    for _ in range(runs):  # interleaved A/B, wall and CPU time (the machine is shared)
        for code, wall_times, cpu_times in ((lookup, match_ms, match_cpu), (whole, whole_ms, whole_cpu)):
            t, c = time.perf_counter(), time.process_time()
            for text in texts:
                code.match(text)
            wall_times.append(time.perf_counter() - t)
            cpu_times.append(time.process_time() - c)
    return {
        "match_ms": statistics.median(match_ms) * 1000,
        "match_whole_ms": statistics.median(whole_ms) * 1000,
        "match_cpu_ms": statistics.median(match_cpu) * 1000,
        "match_whole_cpu_ms": statistics.median(whole_cpu) * 1000,
        "cold_whole_ms": whole_cold,
        "cold_whole_added_ms": whole_cold - base_cold,
        "body_bytes": len(body),
        "cold_without_ms": base_cold,
        "cold_with_ms": code_cold,
        "cold_added_ms": code_cold - base_cold,
        "warm_without_ms": base_warm,
        "warm_with_ms": code_warm,
        "warm_added_ms": code_warm - base_warm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", type=Path, default=SITE / "mypy", help="the 'proprietary' source tree")
    parser.add_argument("--public", type=Path, default=SITE / "setuptools", help="indexed as public code")
    parser.add_argument("--others", type=Path, nargs="*", help="code not indexed (default: stdlib, pydantic, pip)")
    parser.add_argument("--samples", type=int, default=200, help="excerpts per size and transformation")
    parser.add_argument("--runs", type=int, default=50, help="repetitions of the lookup-cost measurement")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="20 samples, 5 runs: a check that it works")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--no-precheck", action="store_true", help="lex every text whole (the method before it)")
    args = parser.parse_args()
    if args.quick:
        args.samples, args.runs = 20, 5
    others = args.others or [STDLIB, SITE / "pydantic", SITE / "pip", SITE / "hypothesis"]

    before = rss_mb()
    own_files, own_cpu, own_wall = index_dir(args.repo)
    public_files, _, _ = index_dir(args.public)
    lines = sum(f.lines for f in own_files)
    rows = [(REPO, f) for f in own_files] + [("public", f) for f in public_files]
    built = rss_mb()
    t = time.perf_counter()
    lookup = Lookup.build(rows, frozenset({"public"}), LookupSettings(precheck=not args.no_precheck))
    build_s = time.perf_counter() - t
    del rows, public_files
    after = rss_mb()

    own_py = python_files(args.repo)
    other_py = [p for root in others for p in python_files(root, skip=(args.repo, args.public))]
    results = {
        "repo": str(args.repo),
        "indexed_files": len(own_files),
        "indexed_lines": lines,
        "stored_fingerprints": sum(f.fingerprints for f in own_files),
        "lookup_fingerprints": len(lookup),
        "index_cpu_s": own_cpu,
        "index_wall_s": own_wall,
        "lines_per_min_one_core": lines / own_cpu * 60,
        "lookup_build_s": build_s,
        "lookup_mb": lookup.nbytes / 1e6,
        "lookup_mb_per_million_lines": lookup.nbytes / 1e6 / (lines / 1e6),
        "rss_growth_mb_per_million_lines": (after - before) / (lines / 1e6),
        "rss_index_files_mb": built - before,
        "quality": quality(lookup, own_py, other_py, args.samples, args.seed),
        "lookup_cost": lookup_cost(lookup, args.runs),
    }
    report(results, args.samples)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def report(r: dict[str, Any], samples: int) -> None:
    q = r["quality"]
    print(f"indexed {r['indexed_lines']:,} lines in {r['indexed_files']} files of {r['repo']}")
    print(
        f"indexing: {r['lines_per_min_one_core']:,.0f} lines/min on one core "
        f"({r['index_cpu_s']:.1f} s CPU, {r['index_wall_s']:.1f} s wall); lookup built in {r['lookup_build_s']:.2f} s"
    )
    print(
        f"memory: lookup {r['lookup_mb']:.1f} MB = {r['lookup_mb_per_million_lines']:.1f} MB per million lines "
        f"({r['lookup_fingerprints']:,} fingerprints); RSS growth {r['rss_growth_mb_per_million_lines']:.0f} MB "
        "per million lines (with the fingerprints read)"
    )
    print(f"\nrecall ({samples} excerpts per cell)\n")
    print("| transformation | " + " | ".join(f"{s} lines" for s in SIZES) + " |")
    print("|---|" + "---:|" * len(SIZES))
    for name, by_size in q["recall"].items():
        print(f"| {name} | " + " | ".join(f"{by_size[s]:.3f}" for s in SIZES) + " |")
    print(
        "\nfalse matches on code not indexed: " + ", ".join(f"{s} lines {v:.2%}" for s, v in q["false_matches"].items())
    )
    c = r["lookup_cost"]
    print(
        f"\ninspect stage on the {c['body_bytes']:,}-byte Claude Code body, p50: cold {c['cold_without_ms']:.2f} ms "
        f"without, {c['cold_with_ms']:.2f} ms with the lookup (+{c['cold_added_ms']:.2f} ms); resent with one new turn "
        f"{c['warm_without_ms']:.3f} ms without, {c['warm_with_ms']:.3f} ms with (+{c['warm_added_ms']:.3f} ms)"
    )
    print(
        f"every text lexed whole (no line-shape pre-check): cold {c['cold_whole_ms']:.2f} ms "
        f"(+{c['cold_whole_added_ms']:.2f} ms); the lookup alone on the body's texts, p50: "
        f"{c['match_ms']:.2f} ms with the pre-check, {c['match_whole_ms']:.2f} ms without "
        f"(CPU {c['match_cpu_ms']:.2f} ms / {c['match_whole_cpu_ms']:.2f} ms)"
    )


if __name__ == "__main__":
    main()
