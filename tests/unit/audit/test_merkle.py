"""The span Merkle tree: every leaf of random trees proves its membership, and a proof with a
changed leaf, index, sibling or size does not verify."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.audit.merkle import RootBuilder, Tree, leaf_hash, merkle_root, node_hash, root_from_path, verify_inclusion


def reference_root(leaves: list[bytes]) -> bytes:
    """The tree hash as RFC 6962 defines it (split at the largest power of two below n)."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:])).digest()


def shape(index: int, size: int) -> list[bool]:
    """Which side the node is on at each level where it has a sibling (the path's shape)."""
    sides = []
    while size > 1:
        if index ^ 1 < size:
            sides.append(bool(index & 1))
        index, size = index >> 1, (size + 1) // 2
    return sides


def leaves_of(size: int, first_seq: int, salt: int) -> list[bytes]:
    return [leaf_hash(first_seq + i, hashlib.sha256(f"{salt}:{i}".encode()).hexdigest()) for i in range(size)]


trees = st.builds(leaves_of, st.integers(1, 300), st.integers(1, 2**40), st.integers(0, 2**32))


def test_leaf_binds_the_sequence_number_and_is_not_a_node():
    h = "ab" * 32
    assert leaf_hash(1, h) == hashlib.sha256(b"\x00" + (1).to_bytes(8, "big") + bytes.fromhex(h)).digest()
    assert leaf_hash(1, h) != leaf_hash(2, h)
    a, b = leaf_hash(1, h), leaf_hash(2, h)
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest() != node_hash(b, a)


def test_known_small_trees():
    a, b, c = (leaf_hash(i, f"{i:064x}") for i in (1, 2, 3))
    assert merkle_root([a]) == a
    assert merkle_root([a, b, c]) == node_hash(node_hash(a, b), c)
    tree = Tree([a, b, c])
    assert tree.path(2) == [node_hash(a, b)] and tree.path(0) == [b, c]
    with pytest.raises(ValueError):
        merkle_root([])
    with pytest.raises(IndexError):
        tree.path(3)


@settings(max_examples=120, deadline=None)
@given(trees)
def test_every_leaf_of_a_random_tree_verifies(leaves):
    root = reference_root(leaves)
    tree = Tree(leaves)
    assert tree.root == root == merkle_root(leaves)
    for index, leaf in enumerate(leaves):
        path = tree.path(index)
        assert len(path) == len(shape(index, len(leaves)))
        assert verify_inclusion(leaf, index, len(leaves), path, root)


@settings(max_examples=120, deadline=None)
@given(trees)
def test_streamed_root_equals_the_tree_after_every_leaf(leaves):
    builder = RootBuilder()
    for n, leaf in enumerate(leaves, 1):
        builder.add(leaf)
        assert builder.size == n
    assert builder.root() == reference_root(leaves)
    prefix = leaves[: max(1, len(leaves) // 3)]
    assert merkle_root(prefix) == reference_root(prefix)


@settings(max_examples=300, deadline=None)
@given(trees, st.data())
def test_a_changed_leaf_index_sibling_or_size_fails(leaves, data):
    size = len(leaves)
    root = reference_root(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    leaf, path = leaves[index], Tree(leaves).path(index)

    flipped = bytes([leaf[0] ^ 1]) + leaf[1:]
    assert not verify_inclusion(flipped, index, size, path, root)
    assert not verify_inclusion(leaves[(index + 1) % size], index, size, path, root) or size == 1

    if size > 1:
        other = data.draw(st.integers(0, size - 1).filter(lambda j: j != index), label="other index")
        assert not verify_inclusion(leaf, other, size, path, root)
        if path:
            at = data.draw(st.integers(0, len(path) - 1), label="sibling")
            swapped = [*path[:at], hashlib.sha256(path[at]).digest(), *path[at + 1 :]]
            assert not verify_inclusion(leaf, index, size, swapped, root)
            assert not verify_inclusion(leaf, index, size, path[:-1], root)
            if len(path) > 1:
                assert not verify_inclusion(leaf, index, size, path[::-1], root) or path[0] == path[-1]
    assert not verify_inclusion(leaf, index, size, [*path, path[0] if path else leaf], root)
    assert not verify_inclusion(leaf, index, size, path, hashlib.sha256(root).digest())

    # A different size fails whenever it changes the path's shape. (It need not otherwise: leaf 0
    # of 3 and of 4 both pair with one leaf, then one node. So the verifier takes the size from
    # the signed checkpoint's span, never from the proof alone.)
    new_size = data.draw(st.integers(1, 400).filter(lambda n: n != size), label="size")
    if index >= new_size or shape(index, new_size) != shape(index, size):
        assert not verify_inclusion(leaf, index, new_size, path, root)
    # ... and a tree of another size over the same leaves has another root.
    longer = [*leaves, leaf_hash(2**50, "cd" * 32)]
    assert merkle_root(longer) != root
    assert not verify_inclusion(leaf, index, size + 1, path, merkle_root(longer))


def test_malformed_paths_are_refused():
    leaves = leaves_of(5, 1, 0)
    path = Tree(leaves).path(1)
    assert root_from_path(leaves[1], 1, 5, [*path[:-1], path[-1][:31]]) is None
    assert root_from_path(leaves[1], -1, 5, path) is None
    assert root_from_path(leaves[1], 1, 0, path) is None
    assert root_from_path(leaves[1], 1, 5, path) == merkle_root(leaves)
