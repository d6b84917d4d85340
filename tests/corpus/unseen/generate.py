"""The unseen set's cases: vendor formats × vendor syntaxes, generic families × syntaxes."""

from __future__ import annotations

import random

from tests.corpus.matrix.generate import Case
from tests.corpus.matrix.syntaxes import Name
from tests.corpus.unseen.generic import GENERIC_FAMILIES, GENERIC_SYNTAXES
from tests.corpus.unseen.vendors import VENDOR_SYNTAXES, VENDORS

SEED = 2026
PER_CELL = 2


def _case(family: str, group: str, syntax: str, text: str, secret: str) -> Case:
    at = text.index(secret)
    return Case(family, group, syntax, text, at, at + len(secret))


def cases(seed: int = SEED, per_cell: int = PER_CELL) -> list[Case]:
    """Deterministic for a seed; one random stream per cell."""
    out: list[Case] = []
    for vendor in VENDORS:
        for vsyntax in VENDOR_SYNTAXES:
            rng = random.Random(f"{seed}/{vendor.name}/{vsyntax.name}")
            for _ in range(per_cell):
                value = vendor.make(rng)
                out.append(
                    _case(vendor.name, "vendor", vsyntax.name, vsyntax.render(vendor.env, value.text), value.secret)
                )
    for family in GENERIC_FAMILIES:
        for syntax in GENERIC_SYNTAXES:
            if family.style not in syntax.styles:
                continue
            rng = random.Random(f"{seed}/{family.name}/{syntax.name}")
            for _ in range(per_cell):
                name = Name(rng.choice(family.names))
                value = family.value(rng, syntax.rich)
                secret = syntax.encode(value) if syntax.encode else value
                out.append(_case(family.name, "generic", syntax.name, syntax.render(name, value), secret))
    return out
