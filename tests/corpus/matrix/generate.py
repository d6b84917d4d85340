"""The matrix: every family × every syntax that can hold its value, `per_cell` cases a cell."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tests.corpus.matrix.families import FAMILIES
from tests.corpus.matrix.syntaxes import SYNTAXES, Name

SEED = 14
PER_CELL = 2


@dataclass(frozen=True, slots=True)
class Case:
    family: str
    group: str  # vendor | generic
    syntax: str
    text: str
    start: int  # where the secret is in `text`
    end: int

    @property
    def cell(self) -> str:
        return f"{self.family} × {self.syntax}"


def cases(seed: int = SEED, per_cell: int = PER_CELL) -> list[Case]:
    """Deterministic for a seed: one random stream per cell, so adding a family or a syntax does
    not change the other cells' values."""
    out: list[Case] = []
    for family in FAMILIES:
        for syntax in SYNTAXES:
            if family.style not in syntax.styles:
                continue
            rng = random.Random(f"{seed}/{family.name}/{syntax.name}")
            for _ in range(per_cell):
                value = family.make(rng)
                text = syntax.render(Name(family.words), value.text)
                at = text.index(value.secret)  # random: it occurs once
                out.append(Case(family.name, family.group, syntax.name, text, at, at + len(value.secret)))
    return out
