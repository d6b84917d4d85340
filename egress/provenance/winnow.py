"""k-gram hashes of a token stream, and the subset winnowing selects.

Winnowing (Schleimer, Wilkerson and Aiken, 2003): of every `WINDOW` consecutive k-gram hashes,
the smallest is selected (the rightmost on ties). Two texts that share a run of at least
`GUARANTEE` = WINDOW + K - 1 normalised tokens share a whole window, hence its selected hash:
such a match is always detected, however the rest of either text differs. The index keeps only
the selected hashes (about 2 / (WINDOW + 1) of the k-grams); a query computes every k-gram of
its text, so any indexed fingerprint inside a shared run is found.

K = 16 normalised tokens is about two lines of code: long enough that, with names reduced to
which-name-repeats (tokens.py), a k-gram is rarely shared by unrelated code (at K = 12, common
idioms matched unrelated code several times as often: docs/provenance.md), short enough that a
five-line excerpt holds a few dozen. WINDOW = 10 makes the guarantee 25 tokens (two to three
lines) while storing about one fingerprint per 5.5 tokens (roughly one per line).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

K = 16
WINDOW = 10
GUARANTEE = WINDOW + K - 1

_BASE = np.uint64(0x100000001B3)  # an odd multiplier: the polynomial hash mod 2**64
_MIX1 = np.uint64(0xFF51AFD7ED558CCD)
_MIX2 = np.uint64(0xC4CEB9FE1A85EC53)


def kgram_hashes(values: np.ndarray, k: int = K) -> np.ndarray:
    """hash[i] covers values[i : i + k] (uint64; empty when there are fewer than k tokens)."""
    n = len(values) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    for j in range(k):
        h = h * _BASE + values[j : j + n]  # wraps mod 2**64 (numpy arrays do not raise on overflow)
    # A finaliser (MurmurHash3's) so the low and high bits are mixed before minima are taken.
    h ^= h >> np.uint64(33)
    h *= _MIX1
    h ^= h >> np.uint64(33)
    h *= _MIX2
    h ^= h >> np.uint64(33)
    return h


def winnow(hashes: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """The positions of the selected hashes, ascending."""
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(hashes) <= window:
        return np.array([len(hashes) - 1 - int(np.argmin(hashes[::-1]))], dtype=np.int64)
    windows = sliding_window_view(hashes, window)
    rightmost = window - 1 - np.argmin(windows[:, ::-1], axis=1)
    return np.unique(np.arange(len(windows), dtype=np.int64) + rightmost)
