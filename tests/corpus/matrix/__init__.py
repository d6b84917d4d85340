"""The matrix corpus: every credential family written in every syntax, generated, not collected.

A case is one family's value (built from the vendor's documented format, or a generic password,
secret, token, API key or connection string) written in one syntax (a Python assignment, a Go
typed declaration, an XML attribute, a CLI flag, …). The generator is deterministic for a seed,
so the same cases come back on every run and a cell that passed once can be held to it
(tests/unit/detect/test_matrix.py, baseline.json). Hard negatives (references, templating,
placeholders, code that only mentions a credential) are written in the same syntaxes.

Nothing here is taken from another scanner's tests or rules: the values are random strings in
the documented shapes, and the syntaxes are written for this corpus.
"""
