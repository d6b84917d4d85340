"""Unwrapping tool output, diffs and fences: the code comes back line for line."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from egress.provenance.clean import unwrap

# Lines of code-like text: no line may itself look like a wrapper (a fence or a diff header).
code_line = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\r`~"), max_size=40).filter(
    lambda s: not s.startswith(("@@", "diff --git", "--- ", "+++ ", "index "))
)


@given(st.lists(code_line, min_size=2, max_size=30), st.integers(1, 5000), st.sampled_from(["→", ":", "\t"]))
def test_numbered_output_unwraps_to_the_code(lines: list[str], first: int, sep: str) -> None:
    numbered = "\n".join(f"{first + i:>6}{sep}{line}" for i, line in enumerate(lines))
    assert unwrap(numbered) == "\n".join(lines)


def test_a_lone_number_colon_is_code_and_kept() -> None:
    text = "table = {\n    3: 'x',\n    'y': 4,\n}"
    assert unwrap(text) == text


@given(st.lists(code_line, min_size=1, max_size=20))
def test_a_diff_hunk_gives_back_each_side_without_markers(lines: list[str]) -> None:
    marked = [("+" if i % 3 == 0 else "-" if i % 3 == 1 else " ") + line for i, line in enumerate(lines)]
    diff = "diff --git a/x.py b/x.py\nindex 1111111..2222222 100644\n--- a/x.py\n+++ b/x.py\n"
    diff += f"@@ -1,{len(lines)} +1,{len(lines)} @@ def f():\n" + "\n".join(marked)
    new_side = [line if i % 3 != 1 else "" for i, line in enumerate(lines)]
    old_side = [line if i % 3 != 0 else "" for i, line in enumerate(lines)]
    assert unwrap(diff).split("\n")[5:] == new_side
    assert unwrap(diff, side="old").split("\n")[5:] == old_side


def test_fences_become_empty_lines_and_the_code_stays() -> None:
    text = "Here:\n```python\nx = f(1)\n```\ndone"
    assert unwrap(text) == "Here:\n\nx = f(1)\n\ndone"


def test_plus_and_minus_outside_a_hunk_are_code() -> None:
    text = "-x\n+y\n a"
    assert unwrap(text) == text
