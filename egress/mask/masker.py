"""The mask stage: replace, inside text only, every value the decision says must not leave.

How (and the invariants each step keeps):
  1. The values are those of this request's findings of the kinds the decision masks, plus any a
     stateful session inherited from the vault. Each gets its tenant-deterministic placeholder.
  2. Every occurrence of every value is replaced, not only where a detector fired: the agent
     sends restored values back in new places (tool inputs, edits, its own replies), and masking
     them all is what makes `mask(restore(x)) == x` hold and the prompt prefix stable.
  3. Replacement is done in the request's bytes: structure, key order, numbers, escapes and
     `cache_control` stay byte-identical. A value (a detected secret, at least several characters
     of text) occurs only inside string literals; a digits-only value is checked to be inside
     one, so a number of the structure is never rewritten. A value found inside signed
     `thinking` text cannot be masked without breaking its signature: the request is refused.
     Ids, signatures and encrypted blobs are not examined: a detected value cannot occur in a
     base64 blob or an id except by chance far below any other failure.
  4. Every detected occurrence must have been replaced. If the client escaped a value in a way
     the byte search cannot see, the body is rebuilt from the parsed document instead (exact, at
     the cost of the client's formatting). A value is never sent in clear because of formatting.
When nothing is to be masked, the body is the client's, byte for byte.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import hyperscan
import orjson
import re2

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Decision, Finding, MaskedRequest, MaskedValue, ParsedRequest, TextSegment
from egress.mask import literals
from egress.mask.placeholders import Placeholders, json_escape, label_for

_BARE_TOKEN = re.compile(rb"[-+0-9.eE]+")
log = logging.getLogger("egress.mask")
_FIND_LOOP_MAX = 12  # up to this many needles, str.find beats building an automaton
# Value sets larger than this (a secret-dense text is one value) get no Hyperscan automaton.
_AUTOMATON_MAX_BYTES = 1 << 20
# A value longer than this is masked in the parsed document, not searched for in the bytes.
_HUGE_VALUE = 64 * 1024


@dataclass(slots=True)
class _Value:
    value: str
    placeholder: str
    kind: str
    rule_id: str
    confidence: float
    detected: int  # occurrences the detectors reported
    optional: bool = False  # remembered from the session: restorable only if masked in this request


class Masker:
    def __init__(self, placeholders: Placeholders | None = None) -> None:
        self.placeholders = placeholders
        self._search = NeedleSearch()

    def apply(
        self,
        body: bytes,
        parsed: ParsedRequest,
        findings: tuple[Finding, ...],
        decision: Decision,
        inherited: Mapping[str, str] | None = None,
        known: Mapping[str, str] | None = None,
    ) -> MaskedRequest:
        """`inherited`: placeholder -> value of a stateful session (always restorable);
        `known`: value -> placeholder masked earlier in this agent session (see mask.ledger)."""
        wanted = set(decision.mask_kinds)
        targets = [f for f in findings if f.kind in wanted] if wanted else []
        if not targets and not inherited and not known:
            return MaskedRequest(body=body, placeholders={}, masked_count=0)
        if self.placeholders is None:
            # Fail closed: a decision that requires masking is never forwarded in clear.
            raise EgressError(
                ErrorCode.POLICY_DENIED,
                "the policy requires masking, and this gateway has no masking key configured",
                stage="mask",
            )
        values = self._values(parsed, targets, inherited or {}, known or {})
        if parsed.prompt.signed:
            _refuse_if_signed(parsed.prompt.signed, values)
        # A huge value (a secret-dense text, masked whole) is replaced where it is, in the parsed
        # document: searching and escaping it in the bytes would cost several passes over it,
        # each holding the GIL.
        huge = any(len(v.value) > _HUGE_VALUE for v in values.values())
        masked = None if huge else self._mask_bytes(body, values, parsed, targets)
        rewritten = False
        if masked is None:
            masked = self._mask_document(parsed, values, targets)
            rewritten = True
        new_body, counts = masked
        by_placeholder: dict[str, str] = {}
        for v in values.values():
            if v.optional and not counts.get(v.value):
                continue  # remembered from earlier in the session, not in this request
            other = by_placeholder.setdefault(v.placeholder, v.value)
            if other != v.value:
                raise EgressError(ErrorCode.STAGE_FAILED, "two values drew the same placeholder", stage="mask")
        summary = tuple(
            MaskedValue(v.kind, v.rule_id, self.placeholders.audit_hash(v.value), counts.get(v.value, 0))
            for v in values.values()
            if counts.get(v.value, 0) or v.detected
        )
        return MaskedRequest(
            body=new_body,
            placeholders=by_placeholder,
            masked_count=sum(counts.values()),
            values=summary,
            rewritten=rewritten,
        )

    # --- 1. values and their placeholders ---------------------------------------------------

    def _values(
        self, parsed: ParsedRequest, targets: list[Finding], inherited: Mapping[str, str], known: Mapping[str, str]
    ) -> dict[str, _Value]:
        assert self.placeholders is not None
        values: dict[str, _Value] = {}
        segments = parsed.prompt.segments
        for f in targets:
            segment = segments[f.segment]
            value = segment.text[f.start : f.end]
            if segment.json_text:
                value = _json_unescape(value)
            if not value:
                continue
            seen = values.get(value)
            if seen is None:
                values[value] = _Value(value, "", f.kind, f.rule_id, f.confidence, 1)
                continue
            seen.detected += 1
            if (f.confidence, seen.rule_id) > (seen.confidence, f.rule_id):
                seen.kind, seen.rule_id, seen.confidence = f.kind, f.rule_id, f.confidence
        pinned = dict(known)
        pinned.update((value, placeholder) for placeholder, value in inherited.items())
        for v in values.values():
            v.placeholder = pinned.pop(v.value, "") or self.placeholders.make(v.value, label_for(v.rule_id))
        # Values of earlier turns (a stateful session's, or this agent session's): masked wherever
        # the client repeats them, whether or not a detector fires there now.
        inherited_values = set(inherited.values())
        for value, placeholder in pinned.items():
            kind = "inherited" if value in inherited_values else "remembered"
            values[value] = _Value(value, placeholder, kind, "session", 0.0, 0, kind == "remembered")
        return values

    # --- 2-3. replacement in the bytes --------------------------------------------------------

    def _mask_bytes(
        self, body: bytes, values: dict[str, _Value], parsed: ParsedRequest, targets: list[Finding]
    ) -> tuple[bytes, Counter[str]] | None:
        needles: dict[bytes, _Value] = {}
        for v in values.values():
            once = json_escape(v.value)
            needles.setdefault(once, v)
            # Inside JSON text held in a string (tool-call arguments) the value is escaped twice.
            needles.setdefault(json_escape(once.decode("utf-8", "surrogatepass")), v)
        hits = self._find(body, needles)
        edits: list[tuple[int, int, bytes]] = []
        counts: Counter[str] = Counter()
        end_of_last = -1
        view: bytes | None = None
        for start, end, needle in hits:
            if start < end_of_last:
                continue  # overlaps a longer or earlier value already replaced
            if literals.inside_escape(body, start):
                continue  # the bytes only look like the value from the middle of an escape
            if _BARE_TOKEN.fullmatch(needle):
                # Digits could also be a number of the JSON structure: only text is rewritten.
                view = view if view is not None else literals.quote_view(body)
                if view.count(b'"', 0, start) % 2 == 0:
                    continue
            v = needles[needle]
            edits.append((start, end, v.placeholder.encode("ascii")))
            counts[v.value] += 1
            end_of_last = end
        if not _complete(body, values, counts, targets, parsed.prompt.segments):
            return None
        return literals.splice(body, edits), counts

    def _find(self, body: bytes, needles: Mapping[bytes, Any]) -> list[tuple[int, int, bytes]]:
        """Every occurrence of every needle, sorted by start, longest first at one start."""
        hits = self._search.find(body, tuple(sorted(needles, key=lambda n: (-len(n), n))))
        hits.sort(key=lambda h: (h[0], h[0] - h[1]))
        return hits

    # --- 4. the exact fallback ---------------------------------------------------------------

    def _mask_document(
        self, parsed: ParsedRequest, values: dict[str, _Value], targets: list[Finding]
    ) -> tuple[bytes, Counter[str]]:
        """Exact, whatever the client's escaping: each detected span is replaced where the
        detector saw it, and every other occurrence of a value in any text segment too."""
        counts: Counter[str] = Counter()
        changes: dict[tuple[str | int, ...], str] = {}
        spans: dict[int, list[tuple[int, int, _Value]]] = {}
        for f in targets:
            segment = parsed.prompt.segments[f.segment]
            raw_value = segment.text[f.start : f.end]
            value = _json_unescape(raw_value) if segment.json_text else raw_value
            if value in values:
                spans.setdefault(f.segment, []).append((f.start, f.end, values[value]))
        for index, segment in enumerate(parsed.prompt.segments):
            found = spans.get(index, [])
            whole = next((v for start, end, v in found if start == 0 and end == len(segment.text)), None)
            if whole is not None:  # one value is the whole text (secret-dense): nothing else to find
                changes[segment.path] = whole.placeholder
                counts[whole.value] += 1
                continue
            for v in values.values():
                if len(v.value) > len(segment.text):
                    continue  # cannot occur here (its escaped form is longer still)
                needle = json_escape(v.value).decode("utf-8", "surrogatepass") if segment.json_text else v.value
                i = segment.text.find(needle)
                while i >= 0:
                    found.append((i, i + len(needle), v))
                    i = segment.text.find(needle, i + 1)
            if not found:
                continue
            found.sort(key=lambda h: (h[0], h[0] - h[1]))
            pieces: list[str] = []
            last = 0
            for start, end, v in found:
                if start < last:
                    continue
                pieces.append(segment.text[last:start])
                pieces.append(v.placeholder)
                counts[v.value] += 1
                last = end
            pieces.append(segment.text[last:])
            changes[segment.path] = "".join(pieces)
        return orjson.dumps(_with_changes(parsed.document, changes)), counts


def _complete(
    body: bytes,
    values: dict[str, _Value],
    counts: Counter[str],
    targets: list[Finding],
    segments: tuple[TextSegment, ...],
) -> bool:
    """Did the byte search see every occurrence? Always, for a value made of characters every
    JSON encoder writes verbatim, or for a body written with the same escapes as ours;
    otherwise the occurrences in the parsed text are counted."""
    if any(counts[v.value] < v.detected for v in values.values()):
        return False
    unsafe = [v for v in values.values() if not _verbatim(v.value)]
    if not unsafe or _canonical_escapes(body):
        return True
    for f in targets:
        segment = segments[f.segment]
        if segment.json_text and not _verbatim(segment.text[f.start : f.end]):
            # The model's own escaping inside the arguments may differ from ours.
            value = _json_unescape(segment.text[f.start : f.end])
            if json_escape(value).decode("utf-8", "surrogatepass") != segment.text[f.start : f.end]:
                return False
    for v in unsafe:
        escaped = json_escape(v.value).decode("utf-8", "surrogatepass")
        expected = sum(s.text.count(escaped if s.json_text else v.value) for s in segments)
        if counts[v.value] < expected:
            return False
    return True


def _canonical_escapes(body: bytes) -> bool:
    """True if the body uses only the escapes `json_escape` writes: no `\\/`, and `\\u` only
    for control characters, in lower-case hex. Then a value occurs in the bytes exactly as we
    escape it, wherever it occurs in the text."""
    if b"\\/" in body:
        return False
    i = body.find(b"\\u")
    while i >= 0:
        code = body[i + 2 : i + 6]
        if len(code) < 4 or code[:3] not in (b"000", b"001") or code[3:] not in b"0123456789abcdef":
            return False
        i = body.find(b"\\u", i + 6)
    return True


class NeedleSearch:
    """Many literal needles, one pass. A value set seen for the first time is searched with
    `bytes.find` (a few needles) or an RE2 alternation (compiles in well under a millisecond)
    while a Hyperscan automaton for it is compiled on a background thread; the next turns of the
    conversation, which resend the same values, use the automaton (tens of microseconds for
    200 KB, whatever the number of values)."""

    def __init__(self, capacity: int = 256, background: bool = True) -> None:
        self.capacity = capacity
        self.background = background
        self._automata: OrderedDict[tuple[bytes, ...], Any] = OrderedDict()
        self._pending: set[tuple[bytes, ...]] = set()
        self._lock = threading.Lock()
        # Large bodies are masked on worker threads: each thread scans with its own scratch.
        self._threads = threading.local()

    def find(self, body: bytes, needles: tuple[bytes, ...]) -> list[tuple[int, int, bytes]]:
        with self._lock:
            db = self._automata.get(needles)
            if db is not None:
                self._automata.move_to_end(needles)
            start_compile = db is None and needles not in self._pending
            if start_compile:
                self._pending.add(needles)
        hits: list[tuple[int, int, bytes]] = []
        if db is not None:

            def on_match(index: int, _start: int, end: int, _flags: int, _ctx: Any) -> None:
                hits.append((end - len(needles[index]), end, needles[index]))

            db.scan(body, match_event_handler=on_match, scratch=self._scratch(db))
            return hits
        if start_compile and self.background and sum(map(len, needles)) <= _AUTOMATON_MAX_BYTES:
            threading.Thread(target=self._compile, args=(needles,), name="egress-mask-automaton", daemon=True).start()
        if len(needles) <= _FIND_LOOP_MAX:
            for needle in needles:
                i = body.find(needle)
                while i >= 0:
                    hits.append((i, i + len(needle), needle))
                    i = body.find(needle, i + 1)
            return hits
        # Longest needles first in the alternation: at one position the longer value wins.
        pattern = re2.compile(b"|".join(re2.escape(n) for n in needles))
        return [(m.start(), m.end(), m.group()) for m in pattern.finditer(body)]

    def _scratch(self, db: Any) -> Any:
        mine: dict[int, tuple[Any, Any]] | None = getattr(self._threads, "scratch", None)
        if mine is None:
            mine = self._threads.scratch = {}
        held = mine.get(id(db))
        if held is None or held[0] is not db:  # an automaton evicted and another at its address
            if len(mine) >= self.capacity:
                mine.clear()
            held = mine[id(db)] = (db, hyperscan.Scratch(db))
        return held[1]

    def _compile(self, needles: tuple[bytes, ...]) -> None:
        db = hyperscan.Database()
        try:
            db.compile(
                expressions=list(needles),
                ids=list(range(len(needles))),
                elements=len(needles),
                flags=[0] * len(needles),
                literal=True,
            )
        except hyperscan.error as exc:  # the RE2 path keeps serving this value set
            log.warning("mask automaton compile failed: %s", exc)
            return
        finally:
            with self._lock:
                self._pending.discard(needles)
        with self._lock:
            self._automata[needles] = db
            while len(self._automata) > self.capacity:
                self._automata.popitem(last=False)


def _refuse_if_signed(signed: tuple[str, ...], values: dict[str, _Value]) -> None:
    """Signed text (the API's parser found it: Anthropic thinking) cannot be rewritten."""
    for text in signed:
        if any(v in text for v in values):
            raise EgressError(
                ErrorCode.POLICY_DENIED,
                "a signed thinking block in this conversation holds a value the policy requires "
                "masking; it cannot be rewritten without breaking its signature (start a new conversation)",
                stage="mask",
            )


def _json_unescape(text: str) -> str:
    """A span of JSON text that sits inside a string literal, decoded; unchanged if it is not one."""
    if "\\" not in text:
        return text
    try:
        value = orjson.loads(b'"' + text.encode("utf-8", "surrogatepass") + b'"')
    except orjson.JSONDecodeError:
        return text
    return value if isinstance(value, str) else text


# Printable ASCII but " & / < > \ : every JSON encoder writes these as themselves.
_VERBATIM = re.compile(r"[\x20\x21\x23-\x25\x27-\x2e\x30-\x3b\x3d\x3f-\x5b\x5d-\x7e]*")


def _verbatim(text: str) -> bool:
    return _VERBATIM.fullmatch(text) is not None


def _with_changes(doc: Any, changes: dict[tuple[str | int, ...], str]) -> Any:
    """A copy of `doc` with the strings at `changes`' paths replaced; untouched parts are shared."""
    if not changes:
        return doc
    tree: dict[Any, Any] = {}
    for path, text in changes.items():
        node = tree
        for step in path[:-1]:
            node = node.setdefault(step, {})
        node[path[-1]] = text

    def rebuild(value: Any, node: dict[Any, Any] | str) -> Any:
        if isinstance(node, str):
            return node
        copy = dict(value) if isinstance(value, dict) else list(value)
        for step, child in node.items():
            copy[step] = rebuild(value[step], child)
        return copy

    return rebuild(doc, tree)
