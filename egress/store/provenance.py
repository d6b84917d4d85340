"""The code index (egress.provenance): repositories, their files' fingerprints, a generation.

Every change bumps `provenance_generation`, in the same transaction, so a gateway process that
polls the generation reloads exactly when the index changed (and sees whole changes only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from egress.core.provenance import IndexedFile, IndexedRepo
from egress.store.sql import SqlBase, as_bytes

_REPO_COLUMNS = "name, public, source, ref, commit_sha, indexed_at, files, lines, fingerprints, size_bytes"


def _repo(row: Any) -> IndexedRepo:
    return IndexedRepo(
        name=str(row[0]),
        public=bool(row[1]),
        source=str(row[2]),
        ref=row[3],
        commit=row[4],
        indexed_at=float(row[5]),
        files=int(row[6]),
        lines=int(row[7]),
        fingerprints=int(row[8]),
        size_bytes=int(row[9]),
    )


class ProvenanceTables(SqlBase):
    def provenance_generation(self) -> int:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute("SELECT generation FROM provenance_generation WHERE id = 1")
            row = cur.fetchone()
            conn.commit()
        return int(row[0]) if row else 0

    def provenance_repos(self) -> list[IndexedRepo]:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT {_REPO_COLUMNS} FROM provenance_repos ORDER BY name")
            rows = cur.fetchall()
            conn.commit()
        return [_repo(r) for r in rows]

    def provenance_repo(self, name: str) -> IndexedRepo | None:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT {_REPO_COLUMNS} FROM provenance_repos WHERE name = {self.param}", (name,))
            row = cur.fetchone()
            conn.commit()
        return _repo(row) if row else None

    def provenance_digests(self, name: str) -> dict[str, str]:
        """path -> digest of the files indexed for `name`; files indexed before shape keys were
        stored are left out, so `egress index update` fingerprints them again."""
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"SELECT path, digest FROM provenance_files WHERE repo = {self.param} AND shapes IS NOT NULL", (name,)
            )
            rows = cur.fetchall()
            conn.commit()
        return {str(r[0]): str(r[1]) for r in rows}

    def provenance_put(
        self,
        repo: IndexedRepo,
        files: Iterable[IndexedFile],
        keep: Sequence[str] | None,
        on_file: Callable[[IndexedFile], None] | None = None,
    ) -> IndexedRepo:
        """Store the repository and its (changed) files in one transaction.

        `keep` lists every path the repository has now: stored files not in it are removed
        (None keeps nothing but `files`: a first index, or a re-index from scratch). The counts
        of `repo` are recomputed from the stored files; the stored row is returned."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"INSERT INTO provenance_repos ({_REPO_COLUMNS}) VALUES ({', '.join([p] * 10)}) "
                "ON CONFLICT (name) DO UPDATE SET public = excluded.public, source = excluded.source, "
                "ref = excluded.ref, commit_sha = excluded.commit_sha, indexed_at = excluded.indexed_at",
                (repo.name, repo.public, repo.source, repo.ref, repo.commit, repo.indexed_at, 0, 0, 0, 0),
            )
            if keep is None:
                cur.execute(f"DELETE FROM provenance_files WHERE repo = {p}", (repo.name,))
            else:
                cur.execute(f"SELECT path FROM provenance_files WHERE repo = {p}", (repo.name,))
                kept = set(keep)
                gone = [(repo.name, str(r[0])) for r in cur.fetchall() if str(r[0]) not in kept]
                if gone:
                    cur.executemany(f"DELETE FROM provenance_files WHERE repo = {p} AND path = {p}", gone)
            for f in files:
                cur.execute(f"DELETE FROM provenance_files WHERE repo = {p} AND path = {p}", (repo.name, f.path))
                cur.execute(
                    "INSERT INTO provenance_files (repo, path, digest, language, lines, hashes, starts, shapes) "
                    f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})",
                    (repo.name, f.path, f.digest, f.language, f.lines, f.hashes, f.starts, f.shapes),
                )
                if on_file is not None:
                    on_file(f)
            cur.execute(
                f"SELECT COUNT(*), COALESCE(SUM(lines), 0), COALESCE(SUM(LENGTH(hashes)), 0), "
                f"COALESCE(SUM(LENGTH(hashes) + LENGTH(starts)), 0) FROM provenance_files WHERE repo = {p}",
                (repo.name,),
            )
            count, lines, hash_bytes, size = cur.fetchone()
            cur.execute(
                f"UPDATE provenance_repos SET files = {p}, lines = {p}, fingerprints = {p}, size_bytes = {p} "
                f"WHERE name = {p}",
                (int(count), int(lines), int(hash_bytes) // 8, int(size), repo.name),
            )
            cur.execute("UPDATE provenance_generation SET generation = generation + 1 WHERE id = 1")
            conn.commit()
        stored = self.provenance_repo(repo.name)
        assert stored is not None  # written above
        return stored

    def provenance_remove(self, name: str) -> bool:
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"DELETE FROM provenance_files WHERE repo = {p}", (name,))
            cur.execute(f"DELETE FROM provenance_repos WHERE name = {p}", (name,))
            removed = cur.rowcount
            if removed:
                cur.execute("UPDATE provenance_generation SET generation = generation + 1 WHERE id = 1")
            conn.commit()
        return int(removed) > 0

    def provenance_files(self) -> Iterator[tuple[str, IndexedFile]]:
        """Every indexed file with its repository's name, repository by repository."""
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT repo, path, digest, language, lines, hashes, starts, shapes FROM provenance_files "
                "ORDER BY repo, path"
            )
            rows = cur.fetchall()
            conn.commit()
        for r in rows:
            shapes = None if r[7] is None else as_bytes(r[7])
            yield (
                str(r[0]),
                IndexedFile(str(r[1]), str(r[2]), str(r[3]), int(r[4]), as_bytes(r[5]), as_bytes(r[6]), shapes),
            )
