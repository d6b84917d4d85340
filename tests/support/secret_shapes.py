"""The shape of a rule's secret, read from its regex, and uniformly random secrets of that shape.

An `entropy` threshold must never drop a real, random secret. To check that, the secret group of
a rule is read (Python's `re._parser`; every bundled pattern is also valid there) into a finite
set of linear shapes: a sequence of slots, each a set of characters repeated between `lo` and
`hi` times. `(?:AKIA|ASIA)[A-Z2-7]{16}` is two shapes, `AKIA` + 16 of `[A-Z2-7]` and `ASIA` + 16
of `[A-Z2-7]`. A group that uses what has no uniform random reading (`.`, negated classes,
case-insensitive literals, look-arounds, back-references, unbounded repeats of groups) is not
generatable, and neither is a generic value (no literal part and an open length range, such as
`[A-Za-z0-9+/]{8,}` after `Authorization: Basic`): its minimum length is a floor for "anything
token-like", not the length of a real secret, and its threshold is a precision filter.
Generic assignments (`password = …`) have no shape to calibrate.

Used by tests/unit/detect/test_entropy_calibration.py (samples through the real engine) and
bench/entropy_calibration.py (the offline Monte-Carlo of the miss rate of each threshold).
"""

from __future__ import annotations

import itertools
import random
import re
import string
from dataclasses import dataclass
from re import _parser as sre  # type: ignore[attr-defined]  # Python 3.11+: the regex parser

from egress.detect.rules import Rule

# An unbounded repeat (`{40,}`, `+`) is sampled up to this many characters beyond its minimum.
UNBOUNDED_EXTRA = 32
# More linear shapes than this (a product of many alternations) is not worth enumerating.
MAX_SHAPES = 256
# A repeated group (not a single class) is unrolled only for this many different counts.
MAX_GROUP_REPEATS = 8

_CATEGORIES = {
    sre.CATEGORY_DIGIT: string.digits,
    sre.CATEGORY_WORD: string.ascii_letters + string.digits + "_",  # RE2's \w is ASCII
}


class NotGeneratable(ValueError):
    """The secret group has no uniform random reading (the message says which part)."""


@dataclass(frozen=True, slots=True)
class Slot:
    chars: str  # the distinct characters this slot draws from, sorted
    lo: int
    hi: int | None  # None: unbounded

    def upper(self) -> int:
        return self.lo + UNBOUNDED_EXTRA if self.hi is None else self.hi


@dataclass(frozen=True, slots=True)
class Shape:
    """One linear shape: the secret is its slots' characters, in order."""

    slots: tuple[Slot, ...]

    def shortest(self) -> int:
        return sum(s.lo for s in self.slots)

    def is_format(self) -> bool:
        """A vendor format rather than "any value assigned to a secret-looking name": it has a
        literal part (a prefix, suffix or separator), or every slot's length
        range is bounded and narrow (at most twice its minimum)."""
        literal = "".join(s.chars * s.lo if len(s.chars) == 1 and s.lo == s.hi else "\0" for s in self.slots)
        if any(literal.split("\0")):
            return True
        return all(s.hi is not None and s.hi <= 2 * s.lo for s in self.slots if len(s.chars) > 1)

    def describe(self) -> str:
        parts = []
        for s in self.slots:
            if len(s.chars) == 1 and s.lo == s.hi:
                parts.append(s.chars * s.lo)
            else:
                rep = f"{s.lo}" if s.lo == s.hi else f"{s.lo},{'' if s.hi is None else s.hi}"
                parts.append(f"[{len(s.chars)} chars]{{{rep}}}")
        return "".join(parts)


@dataclass(frozen=True, slots=True)
class SecretShapes:
    rule_id: str
    threshold: float
    shapes: tuple[Shape, ...]


def _class(items: list) -> str:
    chars: set[str] = set()
    for op, av in items:
        if op is sre.NEGATE:
            raise NotGeneratable("a negated class")
        if op is sre.LITERAL:
            chars.add(chr(av))
        elif op is sre.RANGE:
            chars.update(chr(c) for c in range(av[0], av[1] + 1))
        elif op is sre.CATEGORY and av in _CATEGORIES:
            chars.update(_CATEGORIES[av])
        else:
            raise NotGeneratable(f"class item {op} {av}")
    return "".join(sorted(chars))


def _single(node: tuple) -> str | None:
    """The characters of a one-character node (a literal or a class), or None."""
    op, av = node
    if op is sre.LITERAL:
        return chr(av)
    if op is sre.IN:
        return _class(av)
    return None


def _join(parts: list[tuple[Shape, ...]]) -> tuple[Shape, ...]:
    combos = 1
    for p in parts:
        combos *= len(p)
        if combos > MAX_SHAPES:
            raise NotGeneratable("too many alternatives")
    return tuple(Shape(tuple(s for shape in combo for s in shape.slots)) for combo in itertools.product(*parts))


def _sequence(nodes: sre.SubPattern | list) -> tuple[Shape, ...]:
    return _join([_node(n) for n in nodes])


def _node(node: tuple) -> tuple[Shape, ...]:
    op, av = node
    chars = _single(node)
    if chars is not None:
        return (Shape((Slot(chars, 1, 1),)),)
    if op is sre.SUBPATTERN:
        _group, add_flags, _del_flags, sub = av
        if add_flags & (re.IGNORECASE | re.DOTALL):
            raise NotGeneratable("a case-insensitive or dot-all group")
        return _sequence(sub)
    if op is sre.BRANCH:
        shapes = tuple(s for alt in av[1] for s in _sequence(alt))
        if len(shapes) > MAX_SHAPES:
            raise NotGeneratable("too many alternatives")
        return shapes
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
        lo, hi, sub = av
        hi_or_none = None if hi is sre.MAXREPEAT else hi
        if len(sub) == 1 and (inner := _single(sub[0])) is not None:
            return (Shape((Slot(inner, lo, hi_or_none),)),)
        if hi_or_none is None or hi_or_none - lo >= MAX_GROUP_REPEATS:
            raise NotGeneratable("an unbounded or wide repeat of a group")
        body = _sequence(sub)
        return tuple(s for count in range(lo, hi_or_none + 1) for s in _join([body] * count))
    raise NotGeneratable(f"{str(op).lower()}")


def _find_group(nodes: sre.SubPattern | list, group: int) -> tuple | None:
    for op, av in nodes:
        if op is sre.SUBPATTERN and av[0] == group:
            return (op, av)
        children: list = []
        if op is sre.SUBPATTERN:
            children = [av[3]]
        elif op is sre.BRANCH:
            children = list(av[1])
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            children = [av[2]]
        for child in children:
            found = _find_group(child, group)
            if found is not None:
                return found
    return None


def secret_shapes(rule: Rule) -> SecretShapes:
    """The linear shapes of a rule's secret group; NotGeneratable says why there are none."""
    if rule.regex is None or rule.entropy is None:
        raise NotGeneratable("no regex or no entropy threshold")
    try:
        tree = sre.parse(rule.regex)
    except re.error as exc:
        raise NotGeneratable(f"Python's parser does not read the pattern: {exc}") from None
    group = rule.secret_group or 1
    node = _find_group(tree, group) if tree.state.groups > 1 else None
    if node is None:
        raise NotGeneratable("the secret is the whole match")
    # A flag group around the secret group (`(?i:…(…))`) makes its literals case-insensitive.
    if tree.state.flags & re.IGNORECASE:
        raise NotGeneratable("a case-insensitive pattern")
    shapes = _node(node)
    if not all(shape.is_format() for shape in shapes):
        raise NotGeneratable("a generic value: no literal part and an open length range")
    return SecretShapes(rule.id, rule.entropy, shapes)


def sample(shape: Shape, rng: random.Random, *, shortest: bool = False) -> str:
    """A uniformly random secret of this shape: each slot's length uniform in its range (its
    minimum when `shortest`), each character uniform in its class."""
    out: list[str] = []
    for slot in shape.slots:
        n = slot.lo if shortest or slot.lo == slot.hi else rng.randint(slot.lo, slot.upper())
        out.append(slot.chars * n if len(slot.chars) == 1 else "".join(rng.choices(slot.chars, k=n)))
    return "".join(out)


def shortest_samples(shape: Shape, rng: random.Random, n: int) -> list[str]:
    """n uniformly random secrets of this shape at its shortest length (the same distribution as
    `sample(..., shortest=True)`, drawn per slot in bulk: several times faster)."""
    columns: list[str | list[str]] = []
    for slot in shape.slots:
        if len(slot.chars) == 1:
            columns.append(slot.chars * slot.lo)
        else:
            bulk = "".join(rng.choices(slot.chars, k=n * slot.lo))
            columns.append([bulk[i * slot.lo : (i + 1) * slot.lo] for i in range(n)])
    return ["".join(c if isinstance(c, str) else c[i] for c in columns) for i in range(n)]
