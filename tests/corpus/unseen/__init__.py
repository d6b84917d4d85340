"""A held-apart evaluation set (issue #14): vendor formats no rule was written for, generic
credentials in syntaxes the matrix does not use, and near-misses that must never be `certain`.

Generated, seeded, our own data. Rules are written from documented formats and syntaxes, never
from these generators; the build only holds that recall per family does not fall below the
committed baseline (tests/corpus/unseen/baseline.json)."""
