"""Fingerprint a source's files: what `egress index add` and `update` store.

`changed_files` lists what to fingerprint (only the files whose digest changed, for an
incremental update); `fingerprint_files` yields one IndexedFile per file worth indexing (see
skip.py). The caller stores them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from egress.core.provenance import IndexedFile
from egress.provenance.shapes import file_keys
from egress.provenance.skip import skip_content
from egress.provenance.sources import DirectorySource, GitSource, SourceFile
from egress.provenance.tokens import Normaliser, lexer_for_path
from egress.provenance.winnow import kgram_hashes, winnow


@dataclass(slots=True)
class Progress:
    """Counts for the progress bar: files seen of `total`, lines fingerprinted."""

    total: int
    done: int = 0
    lines: int = 0
    skipped: int = 0


class Fingerprinter:
    """One Normaliser per language, made on first use."""

    def __init__(self) -> None:
        self._normalisers: dict[str, Normaliser] = {}

    def normaliser(self, path: str) -> Normaliser | None:
        lexer = lexer_for_path(path)
        if lexer is None:
            return None
        found = self._normalisers.get(lexer.name)
        if found is None:
            found = self._normalisers[lexer.name] = Normaliser(lexer)
        return found

    def file(self, source: SourceFile, data: bytes) -> IndexedFile | None:
        """The file's fingerprints, or None when it is not code worth indexing."""
        normaliser = self.normaliser(source.path)
        if normaliser is None or skip_content(data):
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None  # binary or a legacy encoding: not indexed
        tokens = normaliser.tokens(text)
        hashes = kgram_hashes(tokens.values)
        chosen = winnow(hashes)
        return IndexedFile(
            path=source.path,
            digest=source.digest,
            language=normaliser.language,
            lines=text.count("\n") + (0 if text.endswith("\n") or not text else 1),
            hashes=hashes[chosen].astype("<u8").tobytes(),
            starts=tokens.lines[chosen].astype("<u4").tobytes() if len(chosen) else b"",
            shapes=file_keys(text),
        )


def changed_files(
    source: GitSource | DirectorySource, unchanged: Mapping[str, str]
) -> tuple[list[SourceFile], list[SourceFile]]:
    """The files the source lists now that a lexer knows, and those of them whose digest differs from
    `unchanged[path]` (all of them for a first index): the ones to fingerprint."""
    listed = [f for f in source.files() if lexer_for_path(f.path) is not None]
    return listed, [f for f in listed if unchanged.get(f.path) != f.digest]


def fingerprint_files(
    source: GitSource | DirectorySource,
    todo: list[SourceFile],
    on_progress: Callable[[Progress], None] | None = None,
) -> Iterator[IndexedFile]:
    """The fingerprints of the files in `todo` worth indexing (see skip.py), in order."""
    fingerprinter = Fingerprinter()
    progress = Progress(total=len(todo))
    for f, data in source.read(todo):
        indexed = fingerprinter.file(f, data)
        progress.done += 1
        if indexed is None:
            progress.skipped += 1
        else:
            progress.lines += indexed.lines
            yield indexed
        if on_progress is not None:
            on_progress(progress)
