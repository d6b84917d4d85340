"""The inspect stage: every text segment of a prompt in, findings out. Pure: no I/O.

Agents resend the whole conversation on every turn, so results are cached per text (the
segment's exact content is the key: a dict compares the text itself on a hash hit, so a cache hit
can never return another text's findings). The cache belongs to one compiled rule set; a new
rule set gets a new scanner and a new cache. A request's scanning cost is therefore proportional
to the text not seen before.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from egress.core.exchange import Finding, Prompt
from egress.detect.engine import Match, RuleMatcher


@dataclass(frozen=True, slots=True)
class TextFinding:
    kind: str
    rule_id: str
    family: str
    start: int
    end: int
    confidence: float
    severity: str
    preview: str


def redact(value: str) -> str:
    """A preview that never holds the value: a short prefix (vendor prefixes are not secret) and
    the length."""
    keep = 4 if len(value) >= 24 else 2 if len(value) >= 12 else 0
    return f"{value[:keep]}…({len(value)} chars)"


def merge(matches: list[Match]) -> list[Match]:
    """One finding per value: where rules of the same kind overlap, the most confident (then the
    longest) wins; different kinds on the same text are all kept."""
    ranked = sorted(matches, key=lambda m: (-m.rule.confidence, -(m.end - m.start), m.start, m.rule.id))
    kept: list[Match] = []
    for match in ranked:
        if any(k.rule.kind == match.rule.kind and k.start < match.end and match.start < k.end for k in kept):
            continue
        kept.append(match)
    kept.sort(key=lambda m: (m.start, m.end, m.rule.id))
    return kept


class TextScanner:
    def __init__(self, matcher: RuleMatcher, cache_chars: int = 32 * 1024 * 1024) -> None:
        self.matcher = matcher
        self._cache: OrderedDict[str, tuple[TextFinding, ...]] = OrderedDict()
        self._cache_chars = 0
        self._cache_limit = cache_chars
        self.hits = 0
        self.misses = 0

    def scan_text(self, text: str) -> tuple[TextFinding, ...]:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            self.hits += 1
            return cached
        self.misses += 1
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
            )
            for m in merge(self.matcher.scan(text))
        )
        if len(text) <= self._cache_limit // 8:
            self._cache[text] = found
            self._cache_chars += len(text)
            while self._cache_chars > self._cache_limit:
                old, _ = self._cache.popitem(last=False)
                self._cache_chars -= len(old)
        return found


class Scanner:
    """The gateway's inspect stage. Without a text scanner it finds nothing."""

    def __init__(self, text_scanner: TextScanner | None = None) -> None:
        self.text_scanner = text_scanner

    def scan(self, prompt: Prompt) -> tuple[Finding, ...]:
        if self.text_scanner is None:
            return ()
        findings: list[Finding] = []
        scan_text = self.text_scanner.scan_text
        for index, segment in enumerate(prompt.segments):
            for f in scan_text(segment.text):
                findings.append(Finding(f.kind, f.rule_id, index, f.start, f.end, f.confidence, f.severity, f.preview))
        return tuple(findings)
