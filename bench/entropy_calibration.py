"""Monte-Carlo of each bundled rule's `entropy` threshold: how often does it drop a REAL secret?

For every rule whose secret group has a generatable shape (tests/support/secret_shapes.py), draws
N uniformly random secrets of each of its linear shapes at their SHORTEST length (the worst case:
a longer random string of the same classes has more distinct characters), computes their Shannon
entropy exactly as the engine does (bits per character over the whole secret group, prefix
included), and reports the fraction below the threshold, the minimum seen, and a proposed
threshold: the minimum seen over N, less a margin, rounded down to 0.1.

    python bench/entropy_calibration.py [--samples 1000000] [--only RULE ...] [--failing]

numpy does the sampling (a bench dependency): 1M samples of a 20-character shape take ~0.3 s.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from egress.detect.rules import bundled_files, load_rules  # noqa: E402
from tests.support.secret_shapes import NotGeneratable, Shape, secret_shapes  # noqa: E402

CHUNK = 100_000
MARGIN = 0.05  # below the minimum of N samples, before rounding down to 0.1


def entropies(shape: Shape, n: int, rng: np.random.Generator) -> np.ndarray:
    """Shannon entropy (bits/char) of n random secrets of this shape at its shortest length."""
    columns: list[np.ndarray] = []
    for slot in shape.slots:
        alphabet = np.frombuffer(slot.chars.encode("ascii"), dtype=np.uint8)
        for _ in range(slot.lo):
            columns.append(alphabet[rng.integers(len(alphabet), size=n)])
    length = len(columns)
    codes = np.stack(columns, axis=1).astype(np.int64)  # (n, length)
    ones = np.arange(length + 1, dtype=np.float64)
    xlogx = np.where(ones > 0, ones * np.log2(np.maximum(ones, 1)), 0.0)  # c*log2(c), 0 for c=0
    out = np.empty(n)
    for lo in range(0, n, CHUNK):
        block = codes[lo : lo + CHUNK]
        rows = block.shape[0]
        flat = (np.arange(rows, dtype=np.int64)[:, None] * 128 + block).ravel()
        counts = np.bincount(flat, minlength=rows * 128).reshape(rows, 128)
        out[lo : lo + rows] = math.log2(length) - xlogx[counts].sum(axis=1) / length
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1_000_000, help="samples per linear shape")
    parser.add_argument("--only", nargs="*", default=None, help="rule ids")
    parser.add_argument("--failing", action="store_true", help="print only rules with a miss")
    parser.add_argument("--seed", type=int, default=20261126)
    args = parser.parse_args()
    rules = load_rules(bundled_files()).rules
    rng = np.random.default_rng(args.seed)
    skipped: list[str] = []
    print(f"{'rule':40} {'entropy':>7} {'shapes':>6} {'len':>4} {'missed':>9} {'rate':>9} {'min':>6} {'proposed':>8}")
    for rule in rules:
        if rule.entropy is None or (args.only and rule.id not in args.only):
            continue
        try:
            shapes = secret_shapes(rule)
        except NotGeneratable as exc:
            skipped.append(f"{rule.id}: {exc}")
            continue
        started = time.perf_counter()
        missed, total, lowest, shortest = 0, 0, math.inf, math.inf
        for shape in shapes.shapes:
            values = entropies(shape, args.samples, rng)
            missed += int((values < rule.entropy).sum())
            total += len(values)
            lowest = min(lowest, float(values.min()))
            shortest = min(shortest, shape.shortest())
        proposed = min(rule.entropy, math.floor((lowest - MARGIN) * 10) / 10)
        if args.failing and not missed:
            continue
        print(
            f"{rule.id:40} {rule.entropy:7.2f} {len(shapes.shapes):6} {shortest:4} {missed:9} {missed / total:9.2e} "
            f"{lowest:6.3f} {proposed:8.1f}   ({time.perf_counter() - started:.1f} s, {total} samples)"
        )
    print(f"\nnot generatable ({len(skipped)}):")
    for line in skipped:
        print(f"  {line}")


if __name__ == "__main__":
    main()
