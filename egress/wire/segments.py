"""Shared helpers for finding the text an agent sends inside a request document.

Invariant: opaque values (signatures, encrypted reasoning, base64 media, ids) are never returned
as text, so nothing downstream can ever scan or rewrite them.
"""

from __future__ import annotations

from typing import Any

from egress.core.exchange import SegmentKind, TextSegment

Path = tuple[str | int, ...]

# Keys whose values are structure or opaque provider data, never prose a developer wrote.
OPAQUE_KEYS = frozenset(
    {
        "type",
        "id",
        "tool_use_id",
        "call_id",
        "item_id",
        "signature",
        "data",
        "encrypted_content",
        "cache_control",
        "media_type",
        "image_url",
        "file_id",
        "status",
        "role",
        "name",
        "source",
    }
)


def label(value: Any) -> str | None:
    """A `type` or `role` tag as a dictionary key: the string, or None for anything else (a list
    or object there is no known tag, so the item is treated as unknown and inspected whole)."""
    return value if isinstance(value, str) else None


def walk_strings(value: Any, path: Path, kind: SegmentKind, out: list[TextSegment]) -> None:
    """Collect every string leaf of an unknown structure, skipping opaque keys.

    Used for block and item types egress does not know yet: inspecting too much is safe,
    inspecting too little is not (fail closed).
    """
    if isinstance(value, str):
        if value:
            out.append(TextSegment(path, value, kind))
    elif isinstance(value, dict):
        for key, child in value.items():
            if key not in OPAQUE_KEYS:
                walk_strings(child, (*path, key), kind, out)
    elif isinstance(value, list):
        for i, child in enumerate(value):
            walk_strings(child, (*path, i), kind, out)


def add_text(value: Any, path: Path, kind: SegmentKind, out: list[TextSegment], json_text: bool = False) -> None:
    if isinstance(value, str) and value:
        out.append(TextSegment(path, value, kind, json_text))
