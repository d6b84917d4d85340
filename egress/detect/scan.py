"""The inspect stage: every text segment of a prompt in, findings out. Pure: no I/O.

Agents resend the whole conversation on every turn, so results are cached per text (the
segment's exact content is the key: a dict compares the text itself on a hash hit, so a cache hit
can never return another text's findings). The cache belongs to one compiled rule set; a new
rule set gets a new scanner and a new cache. A request's scanning cost is therefore proportional
to the text not seen before.

Bounded: a segment with more than `max_findings` findings is secret-dense. It gets one finding
of rule `secret-dense` (kind secret, confidence 1.0) over the whole segment instead, so the
policy masks or refuses it as a whole, and its scan stops there: neither the scan nor anything
after it does work per secret beyond the cap. A scan may be given a Budget (see budget.py).
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from egress.core.exchange import Finding, Kind, Prompt, Tier
from egress.core.provenance import CodeMatch
from egress.detect import encoded
from egress.detect.bounds import DEFAULT_CACHE_MB, DEFAULT_MAX_FINDINGS
from egress.detect.budget import Budget
from egress.detect.engine import Match, RuleMatcher, encode

# The finding that stands for a whole secret-dense segment (see the module docstring).
DENSE_RULE_ID = "secret-dense"
DENSE_KIND = Kind.SECRET
# A text carrying indexed code (egress.provenance): one finding per repository, over the text.
CODE_RULE_PREFIX = "proprietary-code:"
# Rules overlap (several rules may confirm one value before merging): the scan stops collecting
# raw matches at this multiple of the cap.
_RAW_PER_FINDING = 4


@dataclass(frozen=True, slots=True)
class TextFinding:
    kind: Kind | str  # as Finding.kind: an organisation's own rules name kinds of their own
    rule_id: str
    family: str
    start: int
    end: int
    confidence: float
    severity: str
    preview: str
    tier: Tier = Tier.CERTAIN
    code: CodeMatch | None = None  # kind proprietary_code: which repository, how much


def redact(value: str) -> str:
    """A preview that never holds the value: a short prefix (vendor prefixes are not secret) and
    the length."""
    keep = 4 if len(value) >= 24 else 2 if len(value) >= 12 else 0
    return f"{value[:keep]}…({len(value)} chars)"


def merge(matches: list[Match]) -> list[Match]:
    """One finding per value: where rules of the same kind overlap, a `certain` match beats a
    `likely` one, then the most confident (then the longest) wins; different kinds on the same
    text are all kept.

    The decision is greedy in rank order (tier, confidence, length, start, rule id, input order):
    a match is kept unless it overlaps a kept match of its kind. Only overlapping matches can
    affect each other, so the matches are first split, per kind, into clusters of transitively
    overlapping spans (one sort, one sweep) and the greedy runs inside each cluster, where the
    kept spans are disjoint and sorted: one binary search per match finds the only kept span that
    can overlap it. O(n log n) comparisons; the spans are non-empty (a match has a value)."""
    if len(matches) < 2:
        return list(matches)
    ordered = sorted(range(len(matches)), key=lambda i: (matches[i].rule.kind, matches[i].start))
    kept: list[int] = []
    cluster: list[int] = []
    cluster_kind = ""
    cluster_end = -1
    for i in ordered:
        m = matches[i]
        if cluster and (m.rule.kind != cluster_kind or m.start >= cluster_end):
            _greedy(matches, cluster, kept)
            cluster = []
        if not cluster:
            cluster_kind, cluster_end = m.rule.kind, m.end
        cluster.append(i)
        cluster_end = max(cluster_end, m.end)
    _greedy(matches, cluster, kept)
    # Equal (start, end, rule id) means one rule, so one kind, overlapping: one cluster, where
    # `kept` is in rank order. A stable sort therefore breaks ties exactly as the greedy ranked.
    kept.sort(key=lambda i: (matches[i].start, matches[i].end, matches[i].rule.id))
    return [matches[i] for i in kept]


def _rank(m: Match) -> tuple[bool, float, int, int, str]:
    """A `certain` match outranks a `likely` one, then the more confident, the longer."""
    return (m.tier != Tier.CERTAIN, -m.rule.confidence, -(m.end - m.start), m.start, m.rule.id)


def _greedy(matches: list[Match], cluster: list[int], kept: list[int]) -> None:
    """The greedy choice inside one cluster of one kind (see merge)."""
    if len(cluster) == 1:
        kept.append(cluster[0])
        return
    starts: list[int] = []  # kept spans of this cluster: disjoint, so sorted by start and by end
    ends: list[int] = []
    for i in sorted(cluster, key=lambda i: (*_rank(matches[i]), i)):
        m = matches[i]
        at = bisect_left(starts, m.end)  # kept spans before `at` start before m ends
        if at and ends[at - 1] > m.start:
            continue  # the last of them overlaps m (the earlier ones end before it starts)
        starts.insert(at, m.start)
        ends.insert(at, m.end)
        kept.append(i)


def code_finding(text: str, match: CodeMatch) -> TextFinding:
    """A text carries code of an indexed repository: counts only, over the whole text."""
    preview = f"{match.repo}: {match.lines} lines ({match.share:.0%})"
    return TextFinding(
        Kind.PROPRIETARY_CODE,
        CODE_RULE_PREFIX + match.repo,
        "code",
        0,
        len(text),
        match.confidence,
        "high",
        preview,
        code=match,
    )


def dense_finding(text: str) -> TextFinding:
    """The one finding of a secret-dense text: all of it, masked or refused as one value."""
    return TextFinding(DENSE_KIND, DENSE_RULE_ID, "dense", 0, len(text), 1.0, "critical", f"…({len(text)} chars)")


class TextScanner:
    """Thread-safe: scans may run on the event loop and on worker threads at once (the matcher
    keeps per-thread scratch space; the cache is behind a lock).

    `code` looks a text up in the code index (egress.provenance.live.LiveIndex.match); its
    findings share the cache, so `forget` must be called when the index changes."""

    def __init__(
        self,
        matcher: RuleMatcher,
        cache_chars: int = DEFAULT_CACHE_MB * 1024 * 1024,
        max_findings: int = DEFAULT_MAX_FINDINGS,
        code: Callable[[str], tuple[CodeMatch, ...]] | None = None,
    ) -> None:
        self.matcher = matcher
        self.code = code
        self.max_findings = max_findings
        self._cache: OrderedDict[str, tuple[TextFinding, ...]] = OrderedDict()
        self._cache_chars = 0
        self._cache_limit = cache_chars
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def scan_text(self, text: str, budget: Budget | None = None) -> tuple[TextFinding, ...]:
        if len(text) > self._cache_limit // 8:  # never cached, so not even hashed (30 MB: ~10-70 ms)
            self.misses += 1
            return self._scan(text, budget)
        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                self.hits += 1
                return cached
            self.misses += 1
        found = self._scan(text, budget)
        with self._lock:
            if text not in self._cache:
                self._cache[text] = found
                self._cache_chars += len(text)
            while self._cache_chars > self._cache_limit:
                old, _ = self._cache.popitem(last=False)
                self._cache_chars -= len(old)
        return found

    def forget(self) -> None:
        """Drop every cached result (the code index changed)."""
        with self._lock:
            self._cache.clear()
            self._cache_chars = 0

    def _scan(self, text: str, budget: Budget | None) -> tuple[TextFinding, ...]:
        if self.code is not None:
            return self._scan_rules(text, budget) + tuple(code_finding(text, m) for m in self.code(text))
        return self._scan_rules(text, budget)

    def _scan_rules(self, text: str, budget: Budget | None) -> tuple[TextFinding, ...]:
        cap = self.max_findings
        data = encode(text, budget)
        matches = self.matcher.scan(text, budget, cap, data)
        if len(matches) <= cap:
            matches += self._decoded(text, data, budget, cap - len(matches))
        first = merge(matches)
        merged: list[Match] | None = first
        if len(matches) > cap and len(first) <= cap:
            # Overlapping rules confirmed some values twice: scan on, to a larger bound of raw
            # matches (rare; a secret-dense text is usually past the cap after the first pass).
            matches = self.matcher.scan(text, budget, cap * _RAW_PER_FINDING, data)
            merged = merge(matches) if len(matches) <= cap * _RAW_PER_FINDING else None
        if merged is None or len(merged) > cap:
            found: tuple[TextFinding, ...] = (dense_finding(text),)
        else:
            found = tuple(
                TextFinding(
                    m.rule.kind,
                    m.rule.id,
                    m.rule.family,
                    m.start,
                    m.end,
                    m.rule.confidence,
                    m.rule.severity,
                    redact(m.secret),
                    m.tier,
                )
                for m in merged
            )
        return found

    def _decoded(self, text: str, data: bytes, budget: Budget | None, room: int) -> list[Match]:
        """Credentials inside encoded runs (encoded.py; `data` is the text's UTF-8), each reported
        over the whole run that carries it, as `likely`: masking replaces the encoded text."""
        found: list[Match] = []
        for view in encoded.views(text, data, budget):
            for m in self.matcher.scan(view.text, budget, room):
                if m.rule.kind == Kind.SECRET:
                    found.append(Match(m.rule, view.start, view.end, text[view.start : view.end], Tier.LIKELY))
            if len(found) > room:
                break
        return found


class Scanner:
    """The gateway's inspect stage. Without a text scanner it finds nothing."""

    def __init__(self, text_scanner: TextScanner | None = None) -> None:
        self.text_scanner = text_scanner

    def scan(self, prompt: Prompt, budget: Budget | None = None) -> tuple[Finding, ...]:
        if self.text_scanner is None:
            return ()
        scan_text = self.text_scanner.scan_text
        found = [scan_text(segment.text, budget) for segment in prompt.segments]
        if sum(len(f) for f in found) > self.text_scanner.max_findings:
            # The cap holds for the whole request too: past it, every text with a finding is
            # secret-dense, so masking never handles more values than there are segments.
            found = [
                (dense_finding(segment.text),) if texts else ()
                for segment, texts in zip(prompt.segments, found, strict=True)
            ]
        return tuple(
            Finding(f.kind, f.rule_id, index, f.start, f.end, f.confidence, f.severity, f.preview, f.tier, code=f.code)
            for index, texts in enumerate(found)
            for f in texts
        )
