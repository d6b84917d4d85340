"""The compiled rule matcher: linear time on untrusted text, whatever the rules.

Two linear-time engines work together, with gitleaks' semantics:
  1. One Hyperscan automaton reports which rules' keywords occur in the text (case-insensitive,
     one report per keyword), in a single pass over the text's UTF-8 bytes.
  2. RE2 runs each rule whose keyword occurs over the whole text, for capture groups (the
     secret) and exact offsets. A rule never runs on a text without one of its keywords.
Rules without keywords (shapes such as IBANs or card numbers) are prefiltered the same way by a
Hyperscan automaton of their whole patterns when it accepts them; otherwise they always run.
A third automaton, of every rule's whole pattern (`prefilter`), rules out the rules that cannot
match, so RE2 runs only where a secret is likely: on ASCII text directly, on other text through
its stand-in (`_stand_in`: each non-ASCII character one \x01 byte), which is sound for every
pattern that does not name non-ASCII characters, Unicode classes or control characters.
Neither engine backtracks, so no input can make a scan slow.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import hyperscan
import re2

from egress.core.exchange import Kind, Tier
from egress.detect import prefilter
from egress.detect.budget import Budget
from egress.detect.context import credential_name
from egress.detect.offsets import CONTINUATIONS, identity
from egress.detect.offsets import CharOffsets as _CharOffsets  # the name tests know it by
from egress.detect.rules import NEAR_MISS_RULE_ID, Allowlist, Rule, RuleSet
from egress.detect.validators import NEAR_MISS_VALIDATORS, VALIDATORS, is_placeholder, shannon_entropy

log = logging.getLogger("egress.detect")


# RE2's default memory budget (8 MiB) is too small for the DFA of a very large program (the `jwt`
# rule's three {8,1000} repeats make ~20,000 instructions): RE2 then falls back to its NFA, still
# linear but slower, and logs "DFA out of memory" to stderr on every search. Such patterns get a
# budget that grows with their program: about 1 KiB per instruction, so only the few largest
# rules get more than the default, and the total stays bounded by the bundled rule set.
_DEFAULT_RE2_BUDGET = 8 << 20
_BUDGET_PER_INSTRUCTION = 1 << 10


def compile_confirmer(pattern: bytes) -> Any:
    """A rule's RE2 pattern with a DFA budget fitted to its program size."""
    regex = re2.compile(pattern)
    budget = regex.programsize * _BUDGET_PER_INSTRUCTION
    if budget <= _DEFAULT_RE2_BUDGET:
        return regex
    options = re2.Options()
    options.max_mem = budget
    return re2.compile(pattern, options)


class LazyConfirmer:
    """A rule's RE2 pattern compiled when the rule first runs (`RuleMatcher(lazy=True)`): a
    short-lived `egress scan` of a few files runs a few rules, and compiling all of them would be
    most of its start. Two threads may both compile it once; either result is the same."""

    __slots__ = ("_pattern", "_regex")

    def __init__(self, pattern: bytes) -> None:
        self._pattern = pattern
        self._regex: Any = None

    def _compiled(self) -> Any:
        if self._regex is None:
            self._regex = compile_confirmer(self._pattern)
        return self._regex

    @property
    def groups(self) -> int:
        return int(self._compiled().groups)

    def finditer(self, data: bytes, pos: int = 0, endpos: int | None = None) -> Any:
        return self._compiled().finditer(data, pos, len(data) if endpos is None else endpos)


@dataclass(frozen=True, slots=True)
class Match:
    """A confirmed rule match; `start`/`end` are character offsets of the secret in the text."""

    rule: Rule
    start: int
    end: int
    secret: str
    tier: Tier = Tier.CERTAIN


@dataclass(frozen=True, slots=True)
class _Compiled:
    rule: Rule
    regex: Any  # re2 pattern over bytes: RE2 reads UTF-8 directly, no per-call re-encoding
    allow: tuple[tuple[Allowlist, tuple[Any, ...]], ...]
    check: Callable[..., bool] | None
    # A check that validates structure (a checksum): a value failing it still has the vendor's
    # shape, so it is reported as `likely` instead of dropped.
    near_miss: bool = False


class RuleMatcher:
    def __init__(
        self,
        ruleset: RuleSet,
        cache: prefilter.BlobCache | None = None,
        *,
        whole_patterns: bool = True,
        lazy: bool = False,
    ) -> None:
        """`cache` keeps the compiled Hyperscan automata between processes; `lazy` compiles each
        rule's RE2 pattern when it first runs instead of now (for short-lived processes)."""
        self.ruleset = ruleset
        self._threads = threading.local()  # per-thread Hyperscan scratch (see _scratch)
        self._rules: list[_Compiled] = []
        global_allow = tuple((a, tuple(re2.compile(r) for r in a.regexes)) for a in ruleset.allowlists)
        confirmer = LazyConfirmer if lazy else compile_confirmer
        for rule in ruleset.rules:
            if rule.regex is None:
                continue  # path-only rules apply to files, not to text
            applicable = tuple(g for g in global_allow if not g[0].target_rules or rule.id in g[0].target_rules)
            own = tuple((a, tuple(re2.compile(r) for r in a.regexes)) for a in rule.allowlists)
            check = rule.check or (VALIDATORS[rule.validator] if rule.validator else None)
            near_miss = rule.validator in NEAR_MISS_VALIDATORS
            self._rules.append(_Compiled(rule, confirmer(rule.regex.encode()), own + applicable, check, near_miss))
        self._kw_db, self._kw_rules = self._compile_keywords(cache)
        self._shape_db, self._always = self._compile_shapes(cache)
        self._full_db: Any
        self._full_ids: frozenset[int]
        self._full_db, self._full_ids = (
            prefilter.build(
                [(i, c.rule.regex) for i, c in enumerate(self._rules) if c.rule.id not in _KEYWORD_LED],  # type: ignore[misc]
                cache,
            )
            if whole_patterns
            else (None, frozenset())
        )
        # Rules the whole-pattern automaton does not cover (Hyperscan refused their pattern) are
        # found by their keywords alone; a small automaton of just those keywords decides whether
        # the full keyword pass is needed on a text the whole-pattern pass found nothing in.
        self._uncovered = frozenset(range(len(self._rules))) - self._full_ids
        # On non-ASCII text the whole-pattern automaton runs on a stand-in (see _stand_in), which
        # is sound for every pattern except those that can match a non-ASCII character in a way
        # the stand-in cannot: non-ASCII literals, Unicode classes, control-character classes.
        self._unicode_sensitive = frozenset(
            i for i, c in enumerate(self._rules) if c.rule.regex and _unicode_sensitive(c.rule.regex)
        )
        self._uncovered_kw_db = self._compile_literals(
            cache, sorted({k for i in self._uncovered for k in self._rules[i].rule.keywords})
        )
        # Key-in-context rules match within one line. Their own automaton reports every match
        # end, so RE2 confirms them on those lines only, not over the whole text.
        self._line_db: Any
        self._line_ids: frozenset[int]
        self._line_db, self._line_ids = (
            prefilter.build(
                [(i, c.rule.regex) for i, c in enumerate(self._rules) if c.rule.key_group],  # type: ignore[misc]
                cache,
                _EVERY_END,
            )
            if whole_patterns
            else (None, frozenset())
        )

    # --- compilation ---------------------------------------------------------------------------

    def _compile_keywords(self, cache: prefilter.BlobCache | None) -> tuple[Any, list[tuple[int, ...]]]:
        keywords: dict[str, list[int]] = {}
        for index, compiled in enumerate(self._rules):
            for kw in compiled.rule.keywords:
                keywords.setdefault(kw, []).append(index)
        words = sorted(keywords)
        return self._compile_literals(cache, words), [tuple(keywords[w]) for w in words]

    def _compile_shapes(self, cache: prefilter.BlobCache | None) -> tuple[Any, list[int]]:
        """Keyword-less rules: one Hyperscan automaton of those it accepts (compiled like the
        whole-pattern prefilter, and cached the same way); the rest always run."""
        shapes = [(i, c.rule.regex) for i, c in enumerate(self._rules) if not c.rule.keywords and c.rule.regex]
        db, accepted = prefilter.build(shapes, cache)
        return db, [i for i, _ in shapes if i not in accepted]

    @staticmethod
    def _compile_literals(cache: prefilter.BlobCache | None, words: list[str]) -> Any:
        """One automaton of literal words, case-insensitive, one report per word and text
        (cached like the whole-pattern prefilter)."""
        if not words:
            return None
        literals = [(i, _literal(w).decode()) for i, w in enumerate(words)]
        db, _ = prefilter.build(literals, cache, hyperscan.HS_FLAG_CASELESS | hyperscan.HS_FLAG_SINGLEMATCH)
        return db

    def _always_uncovered(self, data: bytes) -> bool:
        """Whether a rule outside the whole-pattern automaton could still match this text."""
        if any(not self._rules[i].rule.keywords for i in self._uncovered):
            return True
        if self._uncovered_kw_db is None:
            return False
        hit: list[bool] = []

        def on_word(_word: int, _start: int, _end: int, _flags: int, _ctx: Any) -> bool:
            hit.append(True)
            return True  # stop at the first

        try:
            self._uncovered_kw_db.scan(data, match_event_handler=on_word, scratch=self._scratch(self._uncovered_kw_db))
        except hyperscan.ScanTerminated:
            pass
        return bool(hit)

    def _scratch(self, db: Any) -> Any:
        """This thread's scratch space for `db`: Hyperscan releases the GIL while it scans, and
        one scratch must never serve two scans at once."""
        mine: dict[int, Any] | None = getattr(self._threads, "scratch", None)
        if mine is None:
            mine = self._threads.scratch = {}
        scratch = mine.get(id(db))
        if scratch is None:
            scratch = mine[id(db)] = hyperscan.Scratch(db)
        return scratch

    @property
    def rule_count(self) -> int:
        return len(self._rules)

    # --- scanning ------------------------------------------------------------------------------

    def scan(
        self, text: str, budget: Budget | None = None, limit: int | None = None, data: bytes | None = None
    ) -> list[Match]:
        """Every confirmed match. `budget` is checked between passes and after each match (it
        raises BudgetExceeded); past `limit` matches the scan stops and returns limit + 1 of
        them (the caller treats the text as secret-dense). `data` is `encode(text, budget)`
        when the caller has it already."""
        if data is None:
            data = encode(text, budget)
        ascii_only = len(data) == len(text)
        # KELVIN SIGN and LONG S are letters to RE2's case folding but not to \w and \b: no
        # stand-in byte can be both, so such (rare) text takes the reference path.
        reference = not ascii_only and ("\u212a" in text or "\u017f" in text)
        # Hyperscan counts bytes: other text is prefiltered as its stand-in (see _stand_in).
        stand_in = data if ascii_only or reference else _stand_in(data)
        if self._full_db is None or reference:
            triggered = self._keywords(data) | self._shapes(data)
        elif ascii_only:
            triggered = self._prefiltered(data, data, frozenset())
        else:
            triggered = self._non_ascii_triggered(data, stand_in)
        if not triggered:
            return []
        to_chars = identity if ascii_only else _CharOffsets(data)
        lines = _Lines(text)
        matches: list[Match] = []
        if ascii_only:
            windows = self._line_windows(data, triggered & self._line_ids)
        elif reference:
            windows = None  # the reference path (see above)
        else:
            # The line-local automaton reads the stand-in (one byte per character, sound as for
            # the whole-pattern pass), its windows mapped back to bytes.
            windows = _to_bytes(text, self._line_windows(stand_in, triggered & self._line_ids))
        whole = ((0, len(data)),)
        for rule_index in sorted(triggered):
            if budget is not None:
                budget.check()
            where = windows.get(rule_index, whole) if windows is not None else whole
            if self._confirm(self._rules[rule_index], text, data, where, to_chars, lines, matches, budget, limit):
                break
        return matches

    def _line_windows(self, data: bytes, rules: set[int]) -> dict[int, tuple[tuple[int, int], ...]] | None:
        """For line-local rules: the lines (byte ranges) where each one's pattern ends a match;
        None (confirm over the whole text) past a bound on reported ends (a secret-dense text)."""
        if not rules or self._line_db is None:
            return {}
        ends: dict[int, list[int]] = {}
        reported = 0

        def on_end(rule_index: int, _start: int, end: int, _flags: int, _ctx: Any) -> bool:
            nonlocal reported
            reported += 1
            if rule_index in rules:
                ends.setdefault(rule_index, []).append(end)
            return reported > _MAX_LINE_ENDS  # True stops the scan

        try:
            self._line_db.scan(data, match_event_handler=on_end, scratch=self._scratch(self._line_db))
        except hyperscan.ScanTerminated:
            return None
        if reported > _MAX_LINE_ENDS:
            return None
        windows: dict[int, tuple[tuple[int, int], ...]] = {i: () for i in rules}
        for rule_index, offsets in ends.items():
            spans: list[tuple[int, int]] = []
            for end in sorted(offsets):
                # The line holding the match's last character, with its newline (a pattern may
                # end on it); windows that touch are joined, so no match is confirmed twice.
                last = max(end - 1, 0)
                lo = data.rfind(b"\n", 0, last) + 1
                newline = data.find(b"\n", last)
                hi = len(data) if newline < 0 else newline + 1
                if spans and lo < spans[-1][1]:
                    spans[-1] = (spans[-1][0], max(hi, spans[-1][1]))
                else:
                    spans.append((lo, hi))
            windows[rule_index] = tuple(spans)
        return windows

    def _prefiltered(self, data: bytes, prefilter_bytes: bytes, sure: frozenset[int]) -> set[int]:
        """A rule whose whole pattern does not occur in `prefilter_bytes` cannot match (`sure`
        rules are kept regardless): most texts stop after that one pass. The rest need a keyword
        in `data` too (gitleaks semantics)."""
        possible = self._possible(prefilter_bytes) | sure
        if not possible and not self._always_uncovered(data):
            return set()
        triggered = self._keywords(data) | {i for i in possible if not self._rules[i].rule.keywords}
        return {i for i in triggered if i in possible or i not in self._full_ids}

    def _non_ascii_triggered(self, data: bytes, stand_in: bytes) -> set[int]:
        """Hyperscan reads bytes, so other text is prefiltered as its stand-in (see _stand_in).
        Keywords first: when few rules' keywords occur (most agent tool results, numbered with
        U+2192 by Claude Code's Read tool), running them costs less than the whole-pattern pass.
        `stand_in` is `_stand_in(data)`."""
        keyworded = self._keywords(data)
        covered = keyworded & self._full_ids
        if len(covered) >= _PREFILTER_WORTH:
            possible = self._possible(stand_in) | self._unicode_sensitive
            keyworded = {i for i in keyworded if i in possible or i not in self._full_ids}
        shapes = self._shapes(stand_in) | {i for i in self._unicode_sensitive if not self._rules[i].rule.keywords}
        return keyworded | shapes

    def _possible(self, data: bytes) -> set[int]:
        """Rules whose whole pattern occurs in these bytes (Hyperscan: bytes, not characters)."""
        possible: set[int] = set()

        def on_pattern(rule_index: int, _start: int, _end: int, _flags: int, _ctx: Any) -> None:
            possible.add(rule_index)

        self._full_db.scan(data, match_event_handler=on_pattern, scratch=self._scratch(self._full_db))
        return possible

    def _keywords(self, data: bytes) -> set[int]:
        """Rules one of whose keywords occurs (and the rules that always run)."""
        triggered: set[int] = set(self._always)
        if self._kw_db is not None:
            kw_rules = self._kw_rules

            def on_keyword(word: int, _start: int, _end: int, _flags: int, _ctx: Any) -> None:
                triggered.update(kw_rules[word])

            self._kw_db.scan(data, match_event_handler=on_keyword, scratch=self._scratch(self._kw_db))
        return triggered

    def _shapes(self, data: bytes) -> set[int]:
        """Keyword-less rules whose pattern occurs (their automaton, when Hyperscan accepts it)."""
        found: set[int] = set()
        if self._shape_db is not None:

            def on_shape(rule_index: int, _start: int, _end: int, _flags: int, _ctx: Any) -> None:
                found.add(rule_index)

            self._shape_db.scan(data, match_event_handler=on_shape, scratch=self._scratch(self._shape_db))
        return found

    def _confirm(
        self,
        compiled: _Compiled,
        text: str,
        data: bytes,
        where: tuple[tuple[int, int], ...],
        to_chars: Callable[[int], int],
        lines: _Lines,
        out: list[Match],
        budget: Budget | None,
        limit: int | None,
    ) -> bool:
        """Run one rule over the byte ranges `where` of the text and keep the matches that pass
        the rule's checks; True once `out` holds more than `limit` matches."""
        rule = compiled.rule
        for m in (m for lo, hi in where for m in compiled.regex.finditer(data, lo, hi)):
            if budget is not None:
                budget.check()
            group = rule.secret_group
            if group == 0 and compiled.regex.groups:
                # gitleaks: without secretGroup, the first non-empty capture group is the secret
                # (the key name's group is not a candidate).
                group = next((g for g in range(1, compiled.regex.groups + 1) if g != rule.key_group and m.group(g)), 0)
            raw = m.group(group)
            if not raw:
                continue
            if rule.key_group and not credential_name(_whole_key(text, to_chars(m.start(rule.key_group)), m, rule)):
                continue
            b_start, b_end = m.span(group)
            start, end = to_chars(b_start), to_chars(b_end)
            secret = text[start:end]
            if rule.entropy is not None and shannon_entropy(secret) < rule.entropy:
                continue
            tier = rule.tier
            if compiled.check is not None and not compiled.check(secret, text, start, end):
                if not compiled.near_miss:
                    continue
                tier = Tier.LIKELY
            if rule.kind == Kind.SECRET and is_placeholder(secret):
                continue
            if compiled.allow and _allowed(
                compiled.allow,
                secret,
                lambda m=m: m.group(0).decode("utf-8", "replace"),  # type: ignore[misc]
                lambda s=start, e=end: lines.around(s, e),  # type: ignore[misc]
            ):
                continue
            out.append(Match(rule, start, end, secret, tier))
            if limit is not None and len(out) > limit:
                return True
        return False


# Rules whose pattern is an alternation of their own keywords and a tail: their keyword pass says
# as much as a whole-pattern pass would, and a hundred-literal alternation followed by a class
# repeat slows the shared whole-pattern automaton (rules.near_miss_rule).
_KEYWORD_LED = frozenset({NEAR_MISS_RULE_ID})

# Texts are encoded in pieces of this many characters, with a budget check (which may yield the
# GIL) between pieces: one encode of a 30 MB text would hold the GIL for a few hundred ms.
_ENCODE_PIECE = 1 << 20


def encode(text: str, budget: Budget | None = None) -> bytes:
    """The text's UTF-8 (lone surrogates replaced), as one `encode` would give it."""
    if budget is None or len(text) <= _ENCODE_PIECE:
        return text.encode("utf-8", errors="replace")
    pieces = []
    for at in range(0, len(text), _ENCODE_PIECE):
        budget.check()
        pieces.append(text[at : at + _ENCODE_PIECE].encode("utf-8", errors="replace"))
    return b"".join(pieces)


# A key name is extended to the left over these characters (patterns match a key from its
# credential word on: see rules/generic.toml), at most this far.
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-:")
_NAME_REACH = 64


def _whole_key(text: str, start: int, m: Any, rule: Rule) -> str:
    """The key name a match's key group ends: the group, extended left over name characters."""
    lo = start
    while lo > 0 and start - lo < _NAME_REACH and text[lo - 1] in _NAME_CHARS:
        lo -= 1
    return text[lo:start] + str(m.group(rule.key_group).decode("utf-8", "replace"))


def _to_bytes(
    text: str, windows: dict[int, tuple[tuple[int, int], ...]] | None
) -> dict[int, tuple[tuple[int, int], ...]] | None:
    """Character-offset windows (of the stand-in) as byte offsets of the text's UTF-8: one
    cursor over the text, so linear in the text whatever the number of windows."""
    if not windows:
        return windows
    bounds = sorted({b for spans in windows.values() for span in spans for b in span})
    at_char, at_byte = 0, 0
    to_byte: dict[int, int] = {}
    for bound in bounds:
        at_byte += len(text[at_char:bound].encode("utf-8", errors="replace"))
        at_char = bound
        to_byte[bound] = at_byte
    return {i: tuple((to_byte[lo], to_byte[hi]) for lo, hi in spans) for i, spans in windows.items()}


# An allowlist that reads the match's line sees at most this many characters either side of the
# value: a text of one huge line (minified code, a secret-dense prompt) would otherwise cost a
# copy of the whole line per match. Seeing less can only allow less: recall is never lost.
_LINE_WINDOW = 4096


class _Lines:
    """The line around a match, for allowlists that read it."""

    def __init__(self, text: str) -> None:
        self._text = text

    def around(self, start: int, end: int) -> str:
        text = self._text
        lo = max(text.rfind("\n", max(0, start - _LINE_WINDOW), start) + 1, start - _LINE_WINDOW, 0)
        hi = text.find("\n", end, end + _LINE_WINDOW)
        return text[lo : (min(len(text), end + _LINE_WINDOW) if hi < 0 else hi)]


# On non-ASCII text, the whole-pattern pass runs when at least this many rules' keywords occur.
# The line-local rules' automaton reports every match end; past this many, those rules are
# confirmed over the whole text instead.
_EVERY_END = hyperscan.HS_FLAG_ALLOWEMPTY
_MAX_LINE_ENDS = 20_000
_PREFILTER_WORTH = 4
# UTF-8 lead bytes become \x01, continuation bytes go: one byte per character, in one C call.
_LEADS_TO_01 = bytes(range(0xC0)) + b"\x01" * 0x40
_UNICODE_SENSITIVE = re.compile(r"[^\x00-\x7f]|\\[pPCX]|cntrl|\\x[01][0-9a-fA-F]|\\x7[fF]|\\[0-7]{3}")


def _stand_in(data: bytes) -> bytes:
    r"""The text (its UTF-8 bytes) with each non-ASCII character replaced by one \x01 byte.

    Sound for the whole-pattern prefilter: a non-ASCII character and \x01 are both one character
    (RE2 counts repeats in characters), neither is a word, digit or space character for RE2's
    ASCII classes and \b, both match `.`, `\S`, `\W`, `\D` and negated classes that do not name
    control characters, and neither matches an ASCII positive class. So wherever a pattern
    matches the text, it matches the stand-in, unless it names non-ASCII characters, Unicode
    classes or control characters: those rules always run on non-ASCII text. (Text holding one of
    the two characters RE2's case folding matches to ASCII letters never gets here.)"""
    return data.translate(_LEADS_TO_01, CONTINUATIONS)


def _unicode_sensitive(pattern: str) -> bool:
    return _UNICODE_SENSITIVE.search(pattern) is not None


def _literal(word: str) -> bytes:
    special = set(b"\\^$.|?*+()[]{}/")
    return bytes(b for ch in word.encode() for b in ((0x5C, ch) if ch in special else (ch,)))


def _allowed(
    allowlists: tuple[tuple[Allowlist, tuple[Any, ...]], ...],
    secret: str,
    match: Callable[[], str],
    line: Callable[[], str],
) -> bool:
    """`match` and `line` are computed only for an allowlist that reads them."""
    lowered = secret.lower()
    for allow, regexes in allowlists:
        checks: list[bool] = []
        if regexes:
            target = secret if allow.regex_target == "secret" else match() if allow.regex_target == "match" else line()
            checks.append(any(r.search(target) for r in regexes))
        if allow.stopwords:
            checks.append(any(word in lowered for word in allow.stopwords))
        if not checks:
            continue  # a path-only allowlist does not apply to prompt text
        if all(checks) if allow.condition == "AND" else any(checks):
            return True
    return False
