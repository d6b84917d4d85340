"""The in-memory lookup each process builds from the stored index, and what a text matches.

Layout: three parallel arrays sorted by fingerprint: `hashes` (uint64), `files` (int32, an index
into the file table) and `starts` (uint32, the line in that file): 16 bytes per fingerprint, about
one fingerprint per indexed line, so some 16 MB per million lines (plus the path table).

Built once per index generation, then read-only (safe to share between threads):
- the fingerprints of public repositories (`egress index add --public`) are subtracted;
- a fingerprint found in more than `max_files` files is boilerplate (imports, accessors,
  licence headers) and dropped;
- a (fingerprint, file) pair is kept once.

A query normalises the text with the lexer of each indexed language (the `languages` most
indexed), computes every k-gram hash (not only the winnowed ones) and binary-searches them. The
k-grams that hit a repository cover runs of tokens; a run shorter than `min_run_tokens` is
chance and ignored. What remains must cover at least `min_tokens` tokens on `min_lines` lines to
be a match.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from egress.core.provenance import CodeMatch, IndexedFile
from egress.provenance.clean import unwrap
from egress.provenance.tokens import Normaliser, lexer_named
from egress.provenance.winnow import K, kgram_hashes


@dataclass(frozen=True, slots=True)
class LookupSettings:
    min_lines: int = 3  # a match covers at least this many lines of the text
    min_tokens: int = 30  # … and at least this many normalised tokens
    min_run_tokens: int = K + 4  # shorter runs of matching tokens (a lone k-gram) are chance
    max_files: int = 10  # a fingerprint in more files than this is boilerplate
    languages: int = 3  # the query is lexed as each of the most indexed languages


class Lookup:
    def __init__(
        self,
        hashes: np.ndarray,
        files: np.ndarray,
        starts: np.ndarray,
        paths: list[tuple[int, str]],
        repos: list[str],
        languages: tuple[str, ...],
        settings: LookupSettings,
        generation: int = 0,
    ) -> None:
        self.hashes = hashes
        self.files = files
        self.starts = starts
        self.paths = paths  # file index -> (repo index, path)
        self.repos = repos
        self.settings = settings
        self.generation = generation
        self.languages = languages
        self._normalisers = tuple(Normaliser(lexer_named(name)) for name in languages)

    @classmethod
    def empty(cls, settings: LookupSettings | None = None) -> Lookup:
        none = np.zeros(0, dtype=np.uint64)
        return cls(none, np.zeros(0, np.int32), np.zeros(0, np.uint32), [], [], (), settings or LookupSettings())

    @classmethod
    def build(
        cls,
        rows: Iterable[tuple[str, IndexedFile]],
        public: frozenset[str],
        settings: LookupSettings | None = None,
        generation: int = 0,
    ) -> Lookup:
        """From the stored (repo, file) rows; files of the repos in `public` are subtracted."""
        settings = settings or LookupSettings()
        repos: list[str] = []
        repo_index: dict[str, int] = {}
        paths: list[tuple[int, str]] = []
        own_hashes: list[np.ndarray] = []
        own_files: list[np.ndarray] = []
        own_starts: list[np.ndarray] = []
        public_hashes: list[np.ndarray] = []
        language_lines: Counter[str] = Counter()
        for repo, f in rows:
            hashes = np.frombuffer(f.hashes, dtype="<u8")
            if repo in public:
                public_hashes.append(hashes)
                continue
            if repo not in repo_index:
                repo_index[repo] = len(repos)
                repos.append(repo)
            file_id = len(paths)
            paths.append((repo_index[repo], f.path))
            own_hashes.append(hashes)
            own_files.append(np.full(len(hashes), file_id, dtype=np.int32))
            own_starts.append(np.frombuffer(f.starts, dtype="<u4"))
            language_lines[f.language] += f.lines
        if not own_hashes:
            return cls.empty(settings)
        h = np.concatenate(own_hashes).astype(np.uint64)
        fi = np.concatenate(own_files)
        st = np.concatenate(own_starts).astype(np.uint32)
        if public_hashes:
            keep = ~np.isin(h, np.unique(np.concatenate(public_hashes)))
            h, fi, st = h[keep], fi[keep], st[keep]
        # Sort by (hash, file): one entry per pair, then drop hashes in too many files.
        order = np.lexsort((fi, h))
        h, fi, st = h[order], fi[order], st[order]
        if len(h):
            first = np.ones(len(h), dtype=bool)
            first[1:] = (h[1:] != h[:-1]) | (fi[1:] != fi[:-1])
            h, fi, st = h[first], fi[first], st[first]
            _, inverse, counts = np.unique(h, return_inverse=True, return_counts=True)
            common = counts[inverse] > settings.max_files
            h, fi, st = h[~common], fi[~common], st[~common]
        languages = tuple(name for name, _ in language_lines.most_common(settings.languages))
        return cls(h, fi, st, paths, repos, languages, settings, generation)

    @property
    def nbytes(self) -> int:
        return int(self.hashes.nbytes + self.files.nbytes + self.starts.nbytes)

    def __len__(self) -> int:
        return len(self.hashes)

    def match(self, text: str) -> tuple[CodeMatch, ...]:
        """The repositories `text` carries code of, best first (empty when none)."""
        if not len(self.hashes) or len(text) < 40:
            return ()
        cleaned = unwrap(text)
        best: dict[str, CodeMatch] = {}
        for normaliser in self._normalisers:
            for found in self._match_tokens(normaliser, cleaned):
                held = best.get(found.repo)
                if held is None or found.tokens > held.tokens:
                    best[found.repo] = found
        return tuple(sorted(best.values(), key=lambda m: (-m.tokens, m.repo)))

    def _match_tokens(self, normaliser: Normaliser, text: str) -> list[CodeMatch]:
        tokens = normaliser.tokens(text)
        query = kgram_hashes(tokens.values)
        if not len(query):
            return []
        left = np.searchsorted(self.hashes, query, side="left")
        right = np.searchsorted(self.hashes, query, side="right")
        hit = np.flatnonzero(right > left)
        if not len(hit):
            return []
        by_repo: dict[int, list[int]] = defaultdict(list)
        files_by_repo: dict[int, set[int]] = defaultdict(set)
        for position in hit.tolist():
            for entry in range(int(left[position]), int(right[position])):
                file_id = int(self.files[entry])
                repo = self.paths[file_id][0]
                by_repo[repo].append(position)
                files_by_repo[repo].add(file_id)
        s = self.settings
        found = []
        for repo, positions in by_repo.items():
            covered = _covered(sorted(set(positions)), len(tokens), s.min_run_tokens)
            matched = int(covered.sum())
            if matched < s.min_tokens:
                continue
            lines = len(np.unique(tokens.lines[covered]))
            if lines < s.min_lines:
                continue
            share = matched / len(tokens)
            found.append(
                CodeMatch(
                    repo=self.repos[repo],
                    lines=lines,
                    tokens=matched,
                    share=round(share, 4),
                    confidence=round(min(1.0, matched / (4 * s.min_tokens)) * 0.5 + 0.5, 3),
                    paths=tuple(sorted({self.paths[f][1] for f in files_by_repo[repo]})),
                )
            )
        return found


def _covered(positions: list[int], n: int, min_run: int) -> np.ndarray:
    """Tokens covered by the k-grams starting at `positions` (sorted), in runs of ≥ min_run."""
    covered = np.zeros(n, dtype=bool)
    run_start = run_end = -1
    for p in positions:
        if p <= run_end:
            run_end = max(run_end, p + K)
            continue
        if run_end - run_start >= min_run:
            covered[run_start:run_end] = True
        run_start, run_end = p, p + K
    if run_end - run_start >= min_run:
        covered[run_start:run_end] = True
    return covered
