"""Merkle trees over spans of the audit chain, so one record can be shown to belong to a signed
checkpoint without the records around it.

Shape and hashing are those of RFC 6962/9162 (a Merkle tree hash over n leaves splits at the
largest power of two smaller than n), with a leaf that binds the record's sequence number:

    leaf = SHA-256(0x00 ‖ seq as 8-byte big-endian ‖ the record's raw 32-byte chain hash)
    node = SHA-256(0x01 ‖ left ‖ right)

The 0x00/0x01 prefixes keep a leaf from ever being read as a node (second-preimage resistance).
Equivalently, each level pairs neighbours left to right and lifts a lone last node unchanged,
which is how `Tree` builds it; `RootBuilder` gets the same root in O(log n) memory by keeping the
roots of the perfect subtrees seen so far (the binary digits of n).

An inclusion path lists sibling hashes from the leaf up to the root; a lifted node contributes no
element, so a path has at most ceil(log2 n) elements.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

HASH_SIZE = 32
_LEAF = b"\x00"
_NODE = b"\x01"


def leaf_hash(seq: int, record_hash: str) -> bytes:
    """The leaf of record `seq` whose chain hash is `record_hash` (64 hex digits)."""
    return hashlib.sha256(_LEAF + seq.to_bytes(8, "big") + bytes.fromhex(record_hash)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE + left + right).digest()


class RootBuilder:
    """The root of leaves added one at a time, holding one hash per binary digit of their count."""

    __slots__ = ("_sizes", "_hashes", "size")

    def __init__(self) -> None:
        # Perfect subtrees, strictly decreasing sizes from left to right.
        self._sizes: list[int] = []
        self._hashes: list[bytes] = []
        self.size = 0

    def add(self, leaf: bytes) -> None:
        sizes, hashes = self._sizes, self._hashes
        size, digest = 1, leaf
        while sizes and sizes[-1] == size:
            size += sizes.pop()
            digest = node_hash(hashes.pop(), digest)
        sizes.append(size)
        hashes.append(digest)
        self.size += 1

    def root(self) -> bytes:
        if not self._hashes:
            raise ValueError("a Merkle tree needs at least one leaf")
        digest = self._hashes[-1]
        for left in reversed(self._hashes[:-1]):
            digest = node_hash(left, digest)
        return digest


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    builder = RootBuilder()
    for leaf in leaves:
        builder.add(leaf)
    return builder.root()


class Tree:
    """Every level of the tree over `leaves` (O(n) hashes once), then any leaf's path in O(log n)."""

    __slots__ = ("_levels",)

    def __init__(self, leaves: Sequence[bytes]) -> None:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        level = list(leaves)
        self._levels = [level]
        while len(level) > 1:
            paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            if len(level) % 2:
                paired.append(level[-1])  # a lone last node is lifted unchanged
            level = paired
            self._levels.append(level)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    @property
    def root(self) -> bytes:
        return self._levels[-1][0]

    def path(self, index: int) -> list[bytes]:
        """The sibling hashes from leaf `index` up to the root."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is outside a tree of {self.size}")
        path = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index >>= 1
        return path


def root_from_path(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that `path` leads to from `leaf` at `index` in a tree of `size` leaves, or None
    when the path cannot belong to such a tree (wrong length, index outside, malformed hash)."""
    if not 0 <= index < size or any(len(sibling) != HASH_SIZE for sibling in path):
        return None
    digest = leaf
    remaining = iter(path)
    width = size  # nodes on the current level
    while width > 1:
        if index ^ 1 < width:  # else this node is lifted: no sibling on this level
            sibling = next(remaining, None)
            if sibling is None:
                return None
            digest = node_hash(sibling, digest) if index & 1 else node_hash(digest, sibling)
        index >>= 1
        width = (width + 1) // 2
    if next(remaining, None) is not None:
        return None
    return digest


def verify_inclusion(leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes) -> bool:
    found = root_from_path(leaf, index, size, path)
    return found is not None and found == root
