"""Normalised tokens and winnowing: what survives rewriting, and the guaranteed match length."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.provenance.tokens import Normaliser, lexer_for_path
from egress.provenance.winnow import GUARANTEE, WINDOW, K, kgram_hashes, winnow

ORIGINAL = '''
def charge(account, amount, currency="EUR"):
    """Charge an account; refuse negative amounts."""
    if amount <= 0:
        raise ValueError("amount must be positive")  # never zero
    fee = round(amount * 0.029 + 0.30, 2)
    ledger.append((account.id, amount, fee, currency))
    return amount - fee
'''

REWRITTEN = """
def bill(acct, value, cur='USD'):
  # Bill the customer.
  if value <= 0:
      raise ValueError(f"bad value {value}")
  commission = round(value * 0.5 + 1, 3)
  book.append((acct.id, value, commission, cur))
  return value - commission
"""


def _python() -> Normaliser:
    lexer = lexer_for_path("x.py")
    assert lexer is not None
    return Normaliser(lexer)


def test_renaming_reindenting_and_comments_do_not_change_the_tokens() -> None:
    n = _python()
    a, b = n.tokens(ORIGINAL), n.tokens(REWRITTEN)
    assert len(a) > 40
    assert np.array_equal(a.values, b.values)


def test_token_lines_are_the_lines_of_the_text() -> None:
    tokens = _python().tokens("x = 1\n\n# c\ny = 2\n")
    assert tokens.lines.tolist() == [1, 1, 1, 1, 4, 4, 4, 4]  # x = 1 NL y = 2 NL (blank lines: one NL)


def test_different_code_gives_different_tokens() -> None:
    n = _python()
    assert not np.array_equal(n.tokens("for x in y:\n    z(x)\n").values, n.tokens("while x:\n    z(x)\n").values)


tokens = st.lists(st.integers(0, 30), min_size=0, max_size=80).map(lambda v: np.array(v, dtype=np.uint64))


@settings(max_examples=300)
@given(tokens, tokens, st.lists(st.integers(0, 30), min_size=GUARANTEE, max_size=60))
def test_a_shared_run_of_the_guaranteed_length_always_shares_a_fingerprint(
    before: np.ndarray, after: np.ndarray, shared: list[int]
) -> None:
    run = np.array(shared, dtype=np.uint64)
    indexed = np.concatenate([before, run, after])
    query = np.concatenate([after, run, before])
    index_hashes = kgram_hashes(indexed)
    selected = set(index_hashes[winnow(index_hashes)].tolist())
    assert selected & set(kgram_hashes(query).tolist())


@given(tokens)
def test_winnowing_selects_at_least_one_hash_per_window(values: np.ndarray) -> None:
    hashes = kgram_hashes(values)
    chosen = winnow(hashes)
    if len(hashes) == 0:
        assert len(chosen) == 0
        return
    gaps = np.diff(np.concatenate([[-1], chosen, [len(hashes)]]))
    assert gaps.max() <= WINDOW
    assert K >= 1


def test_which_names_repeat_is_kept_and_the_names_are_not() -> None:
    n = _python()
    same = n.tokens("total = add(total, 1)\n").values
    assert np.array_equal(same, n.tokens("acc = plus(acc, 2)\n").values)  # renamed consistently
    assert not np.array_equal(same, n.tokens("total = add(other, 1)\n").values)  # another name
