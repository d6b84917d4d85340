"""`egress index`: the organisation's code, fingerprinted, so the gateway knows it in a prompt.

The index lives in the store (every replica sees it); see docs/provenance.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from egress.app import open_configured_store
from egress.cli.options import config_option, err_console, load_or_exit
from egress.cli.tables import Column, TableSpec, format_option, print_rows, resolve_format
from egress.config import Config
from egress.core.provenance import IndexedRepo
from egress.provenance.indexer import Progress as IndexProgress
from egress.provenance.indexer import changed_files, fingerprint_files
from egress.provenance.live import LiveIndex
from egress.provenance.lookup import Lookup
from egress.provenance.sources import SourceError, open_source
from egress.store.base import SqlStore

# Fewer files than this index without a progress bar.
PROGRESS_FROM_FILES = 200

REPOS = TableSpec(
    (
        Column("name", "repository", no_wrap=True),
        Column("public", "public"),
        Column("commit", "commit", drop=2, no_wrap=True),
        Column("indexed_at", "indexed", drop=3),
        Column("files", "files", justify="right"),
        Column("lines", "lines", justify="right"),
        Column("fingerprints", "fingerprints", justify="right", drop=1),
        Column("size_bytes", "bytes", justify="right", drop=1),
        Column("source", "source", drop=4),
    )
)
MATCHES = TableSpec(
    (
        Column("repo", "repository", no_wrap=True),
        Column("lines", "matched lines", justify="right"),
        Column("tokens", "tokens", justify="right", drop=2),
        Column("share", "share", justify="right"),
        Column("confidence", "confidence", justify="right", drop=1),
        Column("paths", "paths", drop=3),
    )
)


def indexed_code(config: Config) -> LiveIndex | None:
    """The code index as the gateway loads it, for a dry run (`egress policy eval`); None when
    the configured SQLite store does not exist yet (nothing indexed, and nothing is created)."""
    if config.store_url.startswith("sqlite:///") and not Path(config.store_url.removeprefix("sqlite:///")).exists():
        return None
    store = open_configured_store(config)
    try:
        index = LiveIndex(store)
        index.refresh()
    finally:
        store.close()
    return index


def _utc(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _repo_row(r: IndexedRepo) -> tuple[object, ...]:
    commit = r.commit[:12] if r.commit else ""
    return (r.name, r.public, commit, _utc(r.indexed_at), r.files, r.lines, r.fingerprints, r.size_bytes, r.source)


def _index(store: SqlStore, name: str, path: Path, ref: str | None, public: bool, incremental: bool) -> IndexedRepo:
    try:
        source = open_source(path, ref)
        unchanged = store.provenance_digests(name) if incremental else {}
        listed, todo = changed_files(source, unchanged)
        repo = IndexedRepo(
            name=name,
            public=public,
            source=str(path.resolve()),
            ref=source.ref,
            commit=source.commit,
            indexed_at=time.time(),
            files=0,
            lines=0,
            fingerprints=0,
            size_bytes=0,
        )
        with _progress(len(todo)) as bar:
            task = bar.add_task(f"indexing {name}", total=len(todo))

            def advance(p: IndexProgress) -> None:
                bar.update(task, completed=p.done)

            files = fingerprint_files(source, todo, advance)
            stored = store.provenance_put(repo, files, [f.path for f in listed] if incremental else None)
    except SourceError as exc:
        raise click.ClickException(str(exc)) from None
    err_console.print(
        f"{name}: {stored.files} files, {stored.lines} lines, {stored.fingerprints} fingerprints"
        + (f" at {stored.commit[:12]}" if stored.commit else "")
        + (f" ({len(todo)} changed)" if incremental else "")
    )
    return stored


def _progress(total: int) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=total < PROGRESS_FROM_FILES or not err_console.is_terminal,
    )


@click.group("index")
def index_command() -> None:
    """The organisation's repositories, fingerprinted: prompts carrying their code are routed as
    proprietary (docs/provenance.md)."""


@index_command.command("add")
@config_option
@click.argument("path", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--name", required=True, help="The repository's name in findings, the audit and the policy.")
@click.option("--ref", default=None, help="The git ref to index (default HEAD). PATH must be a git work tree.")
@click.option("--public", is_flag=True, help="Public code (open-source, vendored): subtracted, never matched.")
def add(config_path: Path | None, path: Path, name: str, ref: str | None, public: bool) -> None:
    """Index the tracked files of a git repository at a ref (or a plain directory tree)."""
    store = open_configured_store(load_or_exit(config_path))
    try:
        if store.provenance_repo(name) is not None:
            raise click.ClickException(f"{name!r} is indexed already: `egress index update {name}` refreshes it")
        _index(store, name, path, ref, public, incremental=False)
    finally:
        store.close()


@index_command.command("update")
@config_option
@click.argument("name", required=False)
def update(config_path: Path | None, name: str | None) -> None:
    """Re-index only the files changed since the indexed commit (every repository, or NAME)."""
    store = open_configured_store(load_or_exit(config_path))
    try:
        repos = store.provenance_repos()
        if name is not None:
            repos = [r for r in repos if r.name == name]
            if not repos:
                raise click.ClickException(f"no indexed repository is named {name!r}")
        for r in repos:
            _index(store, r.name, Path(r.source), r.ref, r.public, incremental=True)
    finally:
        store.close()


@index_command.command("list")
@config_option
@format_option
def list_repos(config_path: Path | None, fmt: str, as_json: bool) -> None:
    """The indexed repositories: commit, files, lines, fingerprints and stored size."""
    store = open_configured_store(load_or_exit(config_path))
    try:
        repos = store.provenance_repos()
    finally:
        store.close()
    print_rows(REPOS, [_repo_row(r) for r in repos], resolve_format(fmt, as_json))


@index_command.command("remove")
@config_option
@click.argument("name")
def remove(config_path: Path | None, name: str) -> None:
    """Forget a repository's fingerprints."""
    store = open_configured_store(load_or_exit(config_path))
    try:
        if not store.provenance_remove(name):
            raise click.ClickException(f"no indexed repository is named {name!r}")
    finally:
        store.close()
    err_console.print(f"{name}: removed")


@index_command.command("query")
@config_option
@format_option
@click.argument("file", type=click.File("r", encoding="utf-8", errors="replace"))
def query(config_path: Path | None, fmt: str, as_json: bool, file: TextIO) -> None:
    """Which indexed repositories (and files) a snippet carries code of. FILE may be - (stdin).

    Exit status 0 when something matched, 1 when nothing did."""
    text = file.read()
    store = open_configured_store(load_or_exit(config_path))
    try:
        public = frozenset(r.name for r in store.provenance_repos() if r.public)
        lookup = Lookup.build(store.provenance_files(), public)
    finally:
        store.close()
    matches = lookup.match(text)
    rows = [
        (
            m.repo,
            m.lines,
            m.tokens,
            f"{m.share:.0%}",
            m.confidence,
            " ".join(m.paths[:5]) + (" …" if len(m.paths) > 5 else ""),
        )
        for m in matches
    ]
    if rows or resolve_format(fmt, as_json) == "json":
        print_rows(MATCHES, rows, resolve_format(fmt, as_json))
    else:
        Console(stderr=True).print("no indexed code matched")
    sys.exit(0 if matches else 1)
