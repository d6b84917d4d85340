"""Where indexed files come from: a git repository at a ref, or a plain directory tree.

A git source lists the files tracked at the commit (`git ls-tree`), so what `.gitignore` keeps
out of the repository is never seen; a file force-added despite the root `.gitignore` is
dropped too (pathspec's gitignore semantics). Blobs are read in one `git cat-file --batch`.
A file's digest is its blob id: `egress index update` fingerprints only the paths whose blob
changed since the indexed commit.

A directory source (installed site-packages, node_modules, an unpacked tarball) walks the tree,
honouring a `.gitignore` at its root; a file's digest is the SHA-256 of its bytes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pathspec

from egress.provenance.skip import skip_path


class SourceError(Exception):
    """The path is not something egress can index (no such ref, not a directory, git failed)."""


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str
    digest: str
    size: int


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args], input=stdin, capture_output=True, check=False, timeout=600
        )
    except FileNotFoundError:
        raise SourceError("git is not installed") from None
    if done.returncode != 0:
        raise SourceError(f"git {args[0]} failed: {done.stderr.decode(errors='replace').strip()[:300]}")
    return done.stdout


def is_git_repository(root: Path) -> bool:
    """Is `root` the top of a git work tree? (A directory inside one, say an ignored virtual
    environment, is indexed as a plain directory.)"""
    try:
        top = _git(root, "rev-parse", "--show-toplevel").decode("utf-8", "surrogateescape").strip()
    except SourceError:
        return False
    return Path(top).resolve() == root.resolve()


class GitSource:
    def __init__(self, root: Path, ref: str) -> None:
        self.root = root
        self.ref = ref
        self.commit = _git(root, "rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}").decode().strip()

    def files(self) -> list[SourceFile]:
        listing = _git(self.root, "ls-tree", "-r", "-z", "--long", "--full-tree", self.commit)
        ignored = self._ignored()
        found = []
        for entry in listing.split(b"\0"):
            if not entry:
                continue
            meta, _, raw_path = entry.partition(b"\t")
            mode, kind, oid, size = meta.split()
            path = raw_path.decode("utf-8", "surrogateescape")
            if kind != b"blob" or mode == b"120000" or skip_path(path) or ignored.match_file(path):
                continue
            found.append(SourceFile(path, oid.decode(), int(size)))
        return found

    def _ignored(self) -> pathspec.GitIgnoreSpec:
        try:
            text = _git(self.root, "show", f"{self.commit}:.gitignore").decode("utf-8", "replace")
        except SourceError:
            text = ""
        return pathspec.GitIgnoreSpec.from_lines(text.splitlines())

    def read(self, files: list[SourceFile]) -> Iterator[tuple[SourceFile, bytes]]:
        """Each file's bytes, in order, from one `git cat-file --batch` process."""
        if not files:
            return
        proc = subprocess.Popen(
            ["git", "-C", str(self.root), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdin is not None and proc.stdout is not None
        request = b"".join(f.digest.encode() + b"\n" for f in files)
        writer = threading.Thread(target=_feed, args=(proc.stdin, request), daemon=True)
        writer.start()
        try:
            for f in files:
                header = proc.stdout.readline().split()
                if len(header) != 3 or header[1] != b"blob":
                    raise SourceError(f"git cat-file could not read {f.path}")
                data = proc.stdout.read(int(header[2]))
                proc.stdout.read(1)  # the newline after each object
                yield f, data
        finally:
            writer.join()
            proc.stdout.close()
            proc.wait()


def _feed(pipe: object, data: bytes) -> None:
    try:
        pipe.write(data)  # type: ignore[attr-defined]
    finally:
        pipe.close()  # type: ignore[attr-defined]


class DirectorySource:
    ref: str | None = None
    commit: str | None = None

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise SourceError(f"{root} is not a directory")
        self.root = root
        ignore = root / ".gitignore"
        lines = ignore.read_text("utf-8", "replace").splitlines() if ignore.is_file() else []
        self._ignored = pathspec.GitIgnoreSpec.from_lines(lines)

    def files(self) -> list[SourceFile]:
        found = []
        for folder, dirs, names in os.walk(self.root):
            dirs.sort()
            for name in sorted(names):
                full = Path(folder, name)
                path = full.relative_to(self.root).as_posix()
                if full.is_symlink() or not full.is_file() or skip_path(path) or self._ignored.match_file(path):
                    continue
                data = full.read_bytes()
                found.append(SourceFile(path, hashlib.sha256(data).hexdigest(), len(data)))
        return found

    def read(self, files: list[SourceFile]) -> Iterator[tuple[SourceFile, bytes]]:
        for f in files:
            yield f, (self.root / f.path).read_bytes()


def open_source(root: Path, ref: str | None) -> GitSource | DirectorySource:
    """A git source when `root` is the top of a git work tree (at `ref`, default HEAD), else a directory."""
    if not root.exists():
        raise SourceError(f"{root} does not exist")
    if is_git_repository(root):
        return GitSource(root, ref or "HEAD")
    if ref is not None:
        raise SourceError(f"{root} is not a git repository: --ref needs one")
    return DirectorySource(root)
