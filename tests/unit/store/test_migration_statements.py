"""Migration scripts are split into statements without being fooled by comments or literals."""

import importlib.resources

from hypothesis import given
from hypothesis import strategies as st

from egress.store.sql import statements


def test_a_semicolon_or_apostrophe_in_a_comment_is_not_a_statement() -> None:
    sql = "-- the writer's lock; one per chain\nCREATE TABLE a (x TEXT);\n-- trailing; note\n"
    assert statements(sql) == ["CREATE TABLE a (x TEXT)"]


def test_a_semicolon_inside_a_literal_stays_in_its_statement() -> None:
    sql = "INSERT INTO a VALUES ('x;y -- not a comment', 'it''s');CREATE INDEX i ON a (x)"
    assert statements(sql) == ["INSERT INTO a VALUES ('x;y -- not a comment', 'it''s')", "CREATE INDEX i ON a (x)"]


def test_every_bundled_migration_splits_into_statements_without_comments() -> None:
    root = importlib.resources.files("egress.store") / "migrations"
    for dialect in ("sqlite", "postgres"):
        for script in (root / dialect).iterdir():
            if script.name.endswith(".sql"):
                for statement in statements(script.read_text()):
                    assert not statement.startswith("--"), (script.name, statement)
                    assert statement.split()[0].upper() in {"CREATE", "ALTER", "INSERT", "UPDATE", "DROP", "DELETE"}, (
                        script.name,
                        statement[:80],
                    )


words = st.text(alphabet="abc ;'-\n", max_size=40)


@given(st.lists(st.text(alphabet="abcXYZ ()", min_size=1, max_size=20).filter(str.strip), max_size=6), words)
def test_statements_round_trip_with_comments_between(parts: list[str], comment: str) -> None:
    comment_line = "-- " + comment.replace("\n", " ") + "\n"
    sql = comment_line + (";\n" + comment_line).join(parts) + ";"
    assert statements(sql) == [p.strip() for p in parts]
