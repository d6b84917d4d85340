"""Undo what agents and tools wrap around code before it is fingerprinted.

Three wrappings are removed, each only where it is unmistakable, so real code is never cut:
- line-number prefixes (`     12→code`, `12:code`, `    12\tcode`): only on runs of at least two
  lines whose numbers count up by one (a lone `3: x` in a dict literal stays);
- unified-diff markers: the `+`, `-` or space in column one of the lines of a hunk (after an
  `@@ -a,b +c,d @@` header), and the `diff --git`, `index`, `---`/`+++` header lines. A hunk
  has two sides: `side="new"` keeps the context and `+` lines (the `-` lines are emptied),
  `side="old"` the context and `-` lines; either is contiguous code as one version has it;
- Markdown fences (lines of three or more backticks or tildes, with an optional info string).

Lines are kept (emptied when they are wrapping only), so line numbers in the result are those
of the input.
"""

from __future__ import annotations

import re

_NUMBERED = re.compile(r"^[ \t]*(\d{1,7})(?:→|:|\t)")
_FENCE = re.compile(r"^[ \t]*(?:```|~~~)")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
_DIFF_HEADER = re.compile(r"^(?:diff --git |index [0-9a-f]+\.\.|--- |\+\+\+ |new file mode|deleted file mode)")


def unwrap(text: str, side: str = "new") -> str:
    """`text` with line numbers, diff markers and fences removed (see the module docstring)."""
    lines = text.split("\n")
    _strip_numbers(lines)
    _strip_diff(lines, "-" if side == "new" else "+")
    return "\n".join("" if _FENCE.match(line) else line for line in lines)


def _strip_numbers(lines: list[str]) -> None:
    numbers = [_number(line) for line in lines]
    for i, n in enumerate(numbers):
        if n is None:
            continue
        before = numbers[i - 1] if i else None
        after = numbers[i + 1] if i + 1 < len(numbers) else None
        if before == n - 1 or after == n + 1:
            match = _NUMBERED.match(lines[i])
            assert match is not None  # _number matched this line
            lines[i] = lines[i][match.end() :]


def _number(line: str) -> int | None:
    match = _NUMBERED.match(line)
    return int(match.group(1)) if match else None


def _strip_diff(lines: list[str], dropped: str) -> None:
    in_hunk = False
    for i, line in enumerate(lines):
        if _HUNK.match(line):
            in_hunk = True
            lines[i] = ""
        elif _DIFF_HEADER.match(line):
            in_hunk = False
            lines[i] = ""
        elif in_hunk and line[:1] == dropped:
            lines[i] = ""
        elif in_hunk and line[:1] in ("+", "-", " "):
            lines[i] = line[1:]
        elif in_hunk and line.startswith("\\ No newline"):
            lines[i] = ""
        elif in_hunk and line:
            in_hunk = False  # the hunk ended: prose or code after the diff
