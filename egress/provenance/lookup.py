"""The in-memory lookup each process builds from the stored index, and what a text matches.

Layout: three parallel arrays sorted by fingerprint: `hashes` (uint64), `files` (int32, an index
into the file table) and `starts` (uint32, the line in that file): 16 bytes per fingerprint, about
one fingerprint per indexed line, so some 16 MB per million lines (plus the path table); and
`public` and `common` (uint64, sorted): fingerprints of public code, and of boilerplate.

Built once per index generation, then read-only (safe to share between threads):
- public repositories (`egress index add --public`) are subtracted: text that matches public
  code (as a run, found as private matches are) never counts as matched;
- a fingerprint found in more than `max_files` files is boilerplate (imports, accessors,
  licence headers): the tokens under it never count (it is kept for at most `max_files` + 1
  files, so it still holds a run together);
- a (fingerprint, file) pair is kept once.

Subtracting at match time, not by deleting fingerprints, keeps a real excerpt's run of matching
tokens whole when an idiom inside it also occurs elsewhere: the run is not cut in two.

Before anything is lexed, the text's line-shape keys (shapes.py) are looked up in `shapes`
(uint64, sorted: the keys of the recognised repositories' files, less those in more than
`max_files` files: idioms, as for fingerprints). Only the regions around the
lines a known key covers are lexed, each on its own (a gap of more than `REGION_GAP` lines
starts a new region; each takes `REGION_PAD` lines of context either side). A text none of
whose keys is known is never lexed. When any file was indexed before shape keys were stored,
or a match may be shorter than a key's three lines (`min_lines` < 3), `shapes` is None and
every text is lexed whole, as before.

A query normalises the text (each region) with the lexer of each indexed language (the
`languages` most indexed), computes every k-gram hash (not only the winnowed ones) and
binary-searches them. The k-grams that hit one indexed file cover runs of tokens; a run shorter
than `min_run_tokens` is chance and ignored (runs are never stitched from hits in different
files). What remains must cover at least `min_tokens` tokens on `min_lines` lines (in one
region) to be a match; a repository's matches in several regions add up.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from egress.core.provenance import CodeMatch, IndexedFile
from egress.provenance.clean import unwrap
from egress.provenance.shapes import SPAN, line_keys
from egress.provenance.tokens import Normaliser, lexer_named
from egress.provenance.winnow import K, kgram_hashes


@dataclass(frozen=True, slots=True)
class LookupSettings:
    min_lines: int = 3  # a match covers at least this many lines of the text
    min_tokens: int = 30  # … and at least this many normalised tokens
    min_run_tokens: int = K + 4  # shorter runs of matching tokens (one k-gram and a little) are chance
    min_distinct: int = 4  # … held up by at least this many distinct fingerprints (not a repeated one)
    max_files: int = 10  # a fingerprint in more files than this is boilerplate
    languages: int = 2  # the query is lexed as each of the most indexed languages (≥ 10 % of lines)
    min_keys: int = 3  # a region of a text of SHORT_TEXT lines or more is lexed only with this many known keys
    odd_quotes_only: bool = True  # the 'starts inside a string' variants only when a quote is unbalanced
    precheck: bool = True  # lex only around lines whose shape keys the index holds (shapes.py)


REGION_GAP = 8  # lines with known keys at most this far apart are lexed as one region
REGION_PAD = 4  # lines of context lexed either side of a region
SHORT_TEXT = 40  # a text of fewer lines is lexed around any known key (min_keys does not apply)


@dataclass(slots=True)
class _Found:
    """What one repository matched in one lexed text (a region)."""

    tokens: int
    lines: int
    paths: set[str]


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
        public: np.ndarray | None = None,
        common: np.ndarray | None = None,
        shapes: np.ndarray | None = None,
    ) -> None:
        # None: every text is lexed whole (also when a match may be shorter than a key's lines).
        self.shapes = shapes if settings.precheck and settings.min_lines >= SPAN else None
        self.public = public if public is not None else np.zeros(0, dtype=np.uint64)
        self.common = common if common is not None else np.zeros(0, dtype=np.uint64)
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
        own_shapes: list[np.ndarray] | None = []
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
            if f.shapes is None:
                own_shapes = None  # indexed before shape keys: no pre-check
            elif own_shapes is not None:
                own_shapes.append(np.frombuffer(f.shapes, dtype="<u8"))
            language_lines[f.language] += f.lines
        if not own_hashes:
            return cls.empty(settings)
        h = np.concatenate(own_hashes).astype(np.uint64)
        fi = np.concatenate(own_files)
        st = np.concatenate(own_starts).astype(np.uint32)
        # Sort by (hash, file): one entry per pair; a hash in too many files is ignored (and
        # kept for max_files + 1 of them: enough to hold runs together, bounded per lookup).
        order = np.lexsort((fi, h))
        h, fi, st = h[order], fi[order], st[order]
        first = np.ones(len(h), dtype=bool)
        first[1:] = (h[1:] != h[:-1]) | (fi[1:] != fi[:-1])
        h, fi, st = h[first], fi[first], st[first]
        starts_at = np.flatnonzero(np.concatenate(([True], h[1:] != h[:-1])))
        counts = np.diff(np.append(starts_at, len(h)))
        rank = np.arange(len(h)) - np.repeat(starts_at, counts)
        common = h[starts_at[counts > settings.max_files]]
        keep = rank <= settings.max_files
        h, fi, st = h[keep], fi[keep], st[keep]
        public_set = np.unique(np.concatenate(public_hashes)).astype(np.uint64) if public_hashes else None
        total = sum(language_lines.values())
        most = language_lines.most_common(settings.languages)
        languages = tuple(name for name, lines in most if lines * 10 >= total) or (most[0][0],)
        shapes = None
        if own_shapes is not None:
            # Each file's keys are distinct: a key's count is its number of files.
            keys, files_with = np.unique(np.concatenate(own_shapes).astype(np.uint64), return_counts=True)
            shapes = keys[files_with <= settings.max_files]
        return cls(
            h, fi, st, paths, repos, languages, settings, generation, public_set, common.astype(np.uint64), shapes
        )

    def _ignored_tokens(self, query: np.ndarray, n: int) -> np.ndarray:
        """Tokens that never count: those in a run shared with public code (found as private
        matches are), and those under a boilerplate k-gram."""
        ignored = _covered(_hits(self.public, query), n, self.settings.min_run_tokens)
        for position in _hits(self.common, query):
            ignored[position : position + K] = True
        return ignored

    @property
    def nbytes(self) -> int:
        return int(
            self.hashes.nbytes + self.files.nbytes + self.starts.nbytes + self.public.nbytes + self.common.nbytes
        )

    def __len__(self) -> int:
        return len(self.hashes)

    def match(self, text: str) -> tuple[CodeMatch, ...]:
        """The repositories `text` carries code of, best first (empty when none)."""
        if not len(self.hashes) or len(text) < 40 or text.count("\n") + 1 < self.settings.min_lines:
            return ()  # too short to hold a match: not even lexed (a one-line chat message)
        # A short text (an excerpt pasted alone) is lexed on a single known key: it is cheap to lex
        # and holds few keys; in a long one, a region needs `min_keys` of them.
        short = text.count("\n") < SHORT_TEXT
        needed = 1 if short else self.settings.min_keys
        regions = [text] if self.shapes is None else _regions(text, self.shapes, needed)
        if not regions:
            return ()  # no line could be indexed code: nothing is lexed
        by_repo: dict[int, _Found] = {}
        lexed = 0  # tokens of the regions, as the first normaliser reads them
        for region in regions:
            found, tokens = self._match_region(region)
            lexed += tokens
            for repo, f in found.items():
                held = by_repo.get(repo)
                if held is None:
                    by_repo[repo] = f
                else:
                    held.tokens += f.tokens
                    held.lines += f.lines
                    held.paths |= f.paths
        if not by_repo:
            return ()
        # The share is of the whole text's tokens; those outside the regions, never lexed, are
        # estimated from the regions' tokens per non-blank character.
        total = max(1.0, lexed * _ink(text) / max(1, sum(_ink(r) for r in regions)))
        s = self.settings
        matches = (
            CodeMatch(
                repo=self.repos[repo],
                lines=f.lines,
                tokens=f.tokens,
                share=round(min(1.0, f.tokens / total), 4),
                confidence=round(min(1.0, f.tokens / (4 * s.min_tokens)) * 0.5 + 0.5, 3),
                paths=tuple(sorted(f.paths)),
            )
            for repo, f in by_repo.items()
        )
        return tuple(sorted(matches, key=lambda m: (-m.tokens, m.repo)))

    def _match_region(self, text: str) -> tuple[dict[int, _Found], int]:
        """The best match per repository over the text's variants and normalisers, and how many
        tokens the first normaliser read in the text."""
        cleaned = unwrap(text)
        variants = [cleaned]
        old_side = unwrap(text, side="old")
        if old_side != cleaned:
            variants.append(old_side)  # a diff: its old side is what an index made before holds
        if self.settings.odd_quotes_only:
            inside = cleaned.count('"""') % 2 == 1 or cleaned.count("'''") % 2 == 1
        else:
            inside = '"""' in cleaned or "'''" in cleaned
        if inside:
            # An excerpt that starts inside a multi-line string would be lexed inside out (code
            # as string, string as code): it is also read as if a string had just been opened.
            variants += ['"""\n' + v for v in variants] + ["'''\n" + v for v in variants]
        best: dict[int, _Found] = {}
        lexed = 0
        for normaliser, variant in ((n, v) for n in self._normalisers for v in variants):
            found, tokens = self._match_tokens(normaliser, variant)
            lexed = lexed or tokens
            for repo, f in found.items():
                held = best.get(repo)
                if held is None or f.tokens > held.tokens:
                    best[repo] = f
        return best, lexed

    def _match_tokens(self, normaliser: Normaliser, text: str) -> tuple[dict[int, _Found], int]:
        tokens = normaliser.tokens(text)
        query = kgram_hashes(tokens.values)
        if not len(query):
            return {}, len(tokens)
        left = np.searchsorted(self.hashes, query, side="left")
        right = np.searchsorted(self.hashes, query, side="right")
        hit = np.flatnonzero(right > left)
        if not len(hit):
            return {}, len(tokens)
        by_file: dict[int, list[int]] = defaultdict(list)
        for position in hit.tolist():
            for entry in range(int(left[position]), int(right[position])):
                by_file[int(self.files[entry])].append(position)
        s = self.settings
        # Runs are per file: a real excerpt shares long runs with one file, while chance k-grams
        # shared with many files must not be stitched into one run. A repository matches only
        # when one of its files alone holds the minimum (a real excerpt comes from one file;
        # generic code borrows a run from each of many), with enough distinct fingerprints (a
        # repetitive table, `N.N: S,` line after line, hits one or two fingerprints many times).
        ignored: np.ndarray | None = None
        found: dict[int, _Found] = {}
        union: dict[int, np.ndarray] = {}
        for file_id, positions in by_file.items():
            covered = _covered(positions, len(tokens), s.min_run_tokens)
            if not covered.any():
                continue
            if ignored is None:
                ignored = self._ignored_tokens(query, len(tokens))
            covered &= ~ignored
            matched = int(covered.sum())
            if matched < s.min_tokens:
                continue
            lines = len(np.unique(tokens.lines[covered]))
            if lines < s.min_lines:
                continue
            at = np.asarray(positions)
            distinct = len(np.unique(query[at[covered[at]]]))
            if distinct < s.min_distinct:
                continue
            repo = self.paths[file_id][0]
            held = union.get(repo)
            union[repo] = covered if held is None else held | covered
            f = found.get(repo)
            if f is None:
                found[repo] = _Found(matched, lines, {self.paths[file_id][1]})
            else:
                f.paths.add(self.paths[file_id][1])
        for repo, f in found.items():
            covered = union[repo]
            f.tokens = int(covered.sum())
            f.lines = len(np.unique(tokens.lines[covered]))
        return found, len(tokens)


def _regions(text: str, known: np.ndarray, min_keys: int = 1) -> list[str]:
    """The parts of `text` worth lexing: around the lines that start a key the index holds."""
    keys, kept = line_keys(text)
    if not len(keys) or not len(known):
        return []
    at = np.minimum(np.searchsorted(known, keys), len(known) - 1)
    starts = np.flatnonzero(known[at] == keys)
    if not len(starts):
        return []
    hit = np.unique(kept[(starts[:, None] + np.arange(SPAN)).ravel()]).tolist()
    first_lines = set(kept[starts].tolist())  # the line each known key starts on
    lines = text.split("\n")
    hunks = [i for i, line in enumerate(lines) if line.startswith("@@ -")] if "@@ -" in text else []
    regions: list[str] = []
    first = last = hit[0]
    for line in hit[1:] + [None]:
        if line is not None and line - last <= REGION_GAP:
            last = line
            continue
        # A region with fewer than `min_keys` known keys is a lone generic shape (a dataclass's
        # fields, an `__init__` assigning its arguments): not lexed.
        if sum(1 for k in first_lines if first <= k <= last) >= min_keys:
            a, b = max(0, first - REGION_PAD), min(len(lines), last + REGION_PAD + 1)
            region = lines[a:b]
            before = bisect_left(hunks, a)
            if before:
                region.insert(0, lines[hunks[before - 1]])  # inside a diff: unwrap() needs its hunk header
            regions.append("\n".join(region))
        if line is not None:
            first = last = line
    return regions


def _ink(text: str) -> int:
    """Characters that are not blanks or line breaks."""
    return len(text) - text.count(" ") - text.count("\n") - text.count("\t")


def _hits(sorted_hashes: np.ndarray, query: np.ndarray) -> list[int]:
    """The positions of `query` whose hash is in `sorted_hashes`."""
    if not len(sorted_hashes):
        return []
    at = np.minimum(np.searchsorted(sorted_hashes, query), len(sorted_hashes) - 1)
    return np.flatnonzero(sorted_hashes[at] == query).tolist()


def _covered(positions: list[int], n: int, min_run: int) -> np.ndarray:
    """Tokens covered by the k-grams starting at `positions` (ascending), in runs of ≥ min_run."""
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
