"""The compiled rule matcher: linear time on untrusted text, whatever the rules.

Two linear-time engines work together:
  1. A Hyperscan literal automaton finds every keyword of every rule (case-insensitive) in one
     pass over the text's bytes. A rule runs only where one of its keywords occurs.
  2. RE2 confirms: it runs that rule on the lines around each keyword hit (two lines either
     side, so a match may span up to five lines), or on the whole text for rules written to span
     many lines (PEM blocks, manifests). RE2 gives capture groups (the secret) and offsets.
Rules without keywords (shapes such as IBANs or card numbers) go into one Hyperscan automaton of
their own when it accepts them, and run on the lines it points at; otherwise on the whole text.
Neither engine backtracks, so no input can make a scan slow.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hyperscan
import re2

from egress.detect.rules import Allowlist, Rule, RuleSet
from egress.detect.validators import VALIDATORS, is_placeholder, shannon_entropy

log = logging.getLogger("egress.detect")

CONTEXT_LINES = 2  # lines of context either side of a keyword hit that a match may span
BLOCK_AFTER = 32 * 1024  # bytes after a keyword hit that a multi-line rule (a PEM block, a manifest) may span
BLOCK_BEFORE = 2 * 1024  # and before it (a section header above the keyword); both snapped to whole lines
# Patterns confirmed on the whole text: those that can span many lines, and those anchored to the
# very start or end of the text (\A, \z). A window is whole lines, and ^/$ in the idioms rules
# use them in, (?:^|[^…]) and (?:[^…]|$), find the same secret in a window as in the text.
_MULTILINE = re.compile(r"\(\?[a-zA-Z]*s|\[\\s\\S\]|\[\\S\\s\]|\\n|\[[^\]]*\\s[^\]]*\]\{\d{2,}|\\s\{\d{2,}")
_TEXT_ANCHOR = re.compile(r"\\A|\\z")


@dataclass(frozen=True, slots=True)
class Match:
    """A confirmed rule match; `start`/`end` are character offsets of the secret in the text."""

    rule: Rule
    start: int
    end: int
    secret: str


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    regex: Any  # re2 pattern
    allow: tuple[tuple[Allowlist, tuple[Any, ...]], ...]
    check: Callable[..., bool] | None
    whole_text: bool  # confirm on the whole text (\A/\z anchors), not on lines around hits
    multiline: bool  # confirm on a block of lines after each hit, not on a few lines around it


class RuleMatcher:
    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._rules: list[_Compiled] = []
        global_allow = tuple((a, tuple(re2.compile(r) for r in a.regexes)) for a in ruleset.allowlists)
        for rule in ruleset.rules:
            if rule.regex is None:
                continue  # path-only rules apply to files, not to text
            applicable = tuple(g for g in global_allow if not g[0].target_rules or rule.id in g[0].target_rules)
            own = tuple((a, tuple(re2.compile(r) for r in a.regexes)) for a in rule.allowlists)
            check = rule.check or (VALIDATORS[rule.validator] if rule.validator else None)
            whole = bool(_TEXT_ANCHOR.search(rule.regex))
            multiline = bool(_MULTILINE.search(rule.regex))
            # Bytes patterns: RE2 matches UTF-8 bytes directly, with no per-call re-encoding.
            regex = re2.compile(rule.regex.encode())
            self._rules.append(_Compiled(rule, regex, own + applicable, check, whole, multiline))
        self._kw_db, self._kw_rules = self._compile_keywords()
        self._shape_db, self._always = self._compile_shapes()

    # --- compilation ---------------------------------------------------------------------------

    def _compile_keywords(self) -> tuple[Any, list[tuple[int, ...]]]:
        keywords: dict[str, list[int]] = {}
        for index, compiled in enumerate(self._rules):
            for kw in compiled.rule.keywords:
                keywords.setdefault(kw, []).append(index)
        if not keywords:
            return None, []
        words = sorted(keywords)
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(
            expressions=[_literal(w) for w in words],
            ids=list(range(len(words))),
            elements=len(words),
            flags=[hyperscan.HS_FLAG_CASELESS] * len(words),
        )
        return db, [tuple(keywords[w]) for w in words]

    def _compile_shapes(self) -> tuple[Any, list[int]]:
        """Keyword-less rules: one Hyperscan automaton for those it accepts (line-local ones)."""
        accepted: list[int] = []
        always: list[int] = []
        for index, compiled in enumerate(self._rules):
            if compiled.rule.keywords:
                continue
            if compiled.whole_text or compiled.multiline or not _hyperscan_accepts(compiled.rule.regex):  # type: ignore[arg-type]
                always.append(index)
            else:
                accepted.append(index)
        if not accepted:
            return None, always
        db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        db.compile(
            expressions=[self._rules[i].rule.regex.encode() for i in accepted],  # type: ignore[union-attr]
            ids=accepted,
            elements=len(accepted),
            flags=[hyperscan.HS_FLAG_ALLOWEMPTY] * len(accepted),
        )
        return db, always

    @property
    def rule_count(self) -> int:
        return len(self._rules)

    # --- scanning ------------------------------------------------------------------------------

    def scan(self, text: str) -> list[Match]:
        data = text.encode("utf-8", errors="replace")
        word_hits: dict[int, list[int]] = {}  # keyword index -> byte offsets where it ends
        shape_hits: dict[int, list[int]] = {}  # rule index -> byte offsets where its shape ends

        if self._kw_db is not None:

            def on_keyword(word: int, _start: int, end: int, _flags: int, _ctx: Any) -> None:
                offsets = word_hits.get(word)
                if offsets is None:
                    word_hits[word] = [end]
                elif end - offsets[-1] > 64:  # hits this close share their window
                    offsets.append(end)

            self._kw_db.scan(data, match_event_handler=on_keyword)
        if self._shape_db is not None:

            def on_shape(rule_index: int, _start: int, end: int, _flags: int, _ctx: Any) -> None:
                shape_hits.setdefault(rule_index, []).append(end)

            self._shape_db.scan(data, match_event_handler=on_shape)
        if not word_hits and not shape_hits and not self._always:
            return []
        # Windows are computed once per keyword, then shared by every rule that owns it.
        rule_windows: dict[int, list[tuple[int, int]]] = {}
        whole: set[int] = set(self._always)
        for word, offsets in word_hits.items():
            windows: list[tuple[int, int]] | None = None
            blocks: list[tuple[int, int]] | None = None
            for rule_index in self._kw_rules[word]:
                compiled = self._rules[rule_index]
                if compiled.whole_text:
                    whole.add(rule_index)
                elif compiled.multiline:
                    if blocks is None:
                        blocks = _blocks(data, offsets)
                    rule_windows.setdefault(rule_index, []).extend(blocks)
                else:
                    if windows is None:
                        windows = _windows(data, offsets)
                    rule_windows.setdefault(rule_index, []).extend(windows)
        for rule_index, offsets in shape_hits.items():
            rule_windows.setdefault(rule_index, []).extend(_windows(data, offsets))
        to_chars = _identity if len(data) == len(text) else _CharOffsets(data)
        matches: list[Match] = []
        for rule_index in whole:
            self._confirm(self._rules[rule_index], text, data, 0, len(data), to_chars, matches)
        for rule_index, windows in rule_windows.items():
            if rule_index in whole:
                continue
            for lo, hi in _merge_windows(windows):
                self._confirm(self._rules[rule_index], text, data, lo, hi, to_chars, matches)
        return matches

    def _confirm(
        self,
        compiled: _Compiled,
        text: str,
        data: bytes,
        lo: int,
        hi: int,
        to_chars: Callable[[int], int],
        out: list[Match],
    ) -> None:
        """Run one rule on data[lo:hi] (whole lines, so \\b and (?m)^ see what they would see in
        the whole text) and keep the matches that pass the rule's checks."""
        rule = compiled.rule
        window = data if (lo == 0 and hi == len(data)) else data[lo:hi]
        for m in compiled.regex.finditer(window):
            group = rule.secret_group
            if group == 0 and compiled.regex.groups:
                # gitleaks: without secretGroup, the first non-empty capture group is the secret.
                group = next((g for g in range(1, compiled.regex.groups + 1) if m.group(g)), 0)
            raw = m.group(group)
            if not raw:
                continue
            b_start, b_end = m.span(group)
            start, end = to_chars(lo + b_start), to_chars(lo + b_end)
            secret = text[start:end]
            if rule.entropy is not None and shannon_entropy(secret) < rule.entropy:
                continue
            if compiled.check is not None and not compiled.check(secret, text, start, end):
                continue
            if rule.kind == "secret" and is_placeholder(secret):
                continue
            if compiled.allow and _allowed(
                compiled.allow, secret, m.group(0).decode("utf-8", "replace"), _line(text, start, end)
            ):
                continue
            out.append(Match(rule, start, end, secret))


def _identity(offset: int) -> int:
    return offset


class _CharOffsets:
    """Byte offset -> character offset for non-ASCII text, computed only for confirmed matches."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def __call__(self, offset: int) -> int:
        return len(self._data[:offset].decode("utf-8", "replace"))


def _hyperscan_accepts(pattern: str) -> bool:
    probe = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        probe.compile(expressions=[pattern.encode()], ids=[0], elements=1, flags=[hyperscan.HS_FLAG_ALLOWEMPTY])
    except hyperscan.error:
        return False
    return True


def _literal(word: str) -> bytes:
    special = set(b"\\^$.|?*+()[]{}/")
    return bytes(b for ch in word.encode() for b in ((0x5C, ch) if ch in special else (ch,)))


def _line_start(data: bytes, pos: int, lines_up: int) -> int:
    """Start of the line `lines_up` lines above the one holding `pos`."""
    for _ in range(lines_up + 1):
        newline = data.rfind(b"\n", 0, pos)
        if newline < 0:
            return 0
        pos = newline
    return pos + 1


def _line_end(data: bytes, pos: int, lines_down: int) -> int:
    """End (exclusive, at the newline) of the line `lines_down` lines below the one holding `pos`."""
    for _ in range(lines_down + 1):
        newline = data.find(b"\n", pos)
        if newline < 0:
            return len(data)
        pos = newline + 1
    return pos - 1


def _windows(
    data: bytes, offsets: list[int], up: int = CONTEXT_LINES, down: int = CONTEXT_LINES
) -> list[tuple[int, int]]:
    """Merge hit offsets into windows of whole lines: `up` lines above each hit, `down` below.

    Linear in the text: a hit on the same line as the previous one costs one short find."""
    windows: list[tuple[int, int]] = []
    previous = -1
    for offset in sorted(offsets):
        if windows and offset <= windows[-1][1]:
            if data.find(b"\n", previous, offset) >= 0:  # a later line: its context may reach further
                windows[-1] = (windows[-1][0], max(windows[-1][1], _line_end(data, offset, down)))
        else:
            windows.append((_line_start(data, offset, up), _line_end(data, offset, down)))
        previous = offset
    return _merge_windows(windows)


def _blocks(data: bytes, offsets: list[int]) -> list[tuple[int, int]]:
    """Windows for multi-line rules: whole lines from BLOCK_BEFORE before to BLOCK_AFTER after."""
    windows = []
    for offset in sorted(offsets):
        if windows and offset + BLOCK_AFTER <= windows[-1][1]:
            continue
        lo = _line_start(data, max(offset - BLOCK_BEFORE, 0), 0)
        hi = _line_end(data, min(offset + BLOCK_AFTER, len(data)), 0)
        windows.append((lo, hi))
    return _merge_windows(windows)


def _merge_windows(windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    if len(windows) < 2:
        return windows
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(windows):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _line(text: str, start: int, end: int) -> str:
    lo = text.rfind("\n", 0, start) + 1
    hi = text.find("\n", end)
    return text[lo : (len(text) if hi < 0 else hi)]


def _allowed(allowlists: tuple[tuple[Allowlist, tuple[Any, ...]], ...], secret: str, match: str, line: str) -> bool:
    lowered = secret.lower()
    for allow, regexes in allowlists:
        target = {"secret": secret, "match": match, "line": line}[allow.regex_target]
        checks: list[bool] = []
        if regexes:
            checks.append(any(r.search(target) for r in regexes))
        if allow.stopwords:
            checks.append(any(word in lowered for word in allow.stopwords))
        if not checks:
            continue  # a path-only allowlist does not apply to prompt text
        if all(checks) if allow.condition == "AND" else any(checks):
            return True
    return False
