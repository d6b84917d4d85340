"""Text completions: OpenAI's legacy `POST /v1/completions` and Mistral's fill-in-the-middle
`POST /v1/fim/completions` (Codestral), the two APIs editors' autocomplete speaks.

Both send the code before the cursor as `prompt` and the code after it as `suffix`; both are
inspected, masked and restored. The answers differ: a legacy completion is a `text_completion`
whose choices carry `text` (streamed, the same object per `data:` line, then `[DONE]`); a FIM
answer is shaped as a Chat completion (`choices[].message.content`, streamed as
`choices[].delta.content`), so FIM reuses the Chat Completions answer checks, usage, stream
observer and grammar. Usage, `choices` and the stream's ending are the same in all three.

Fail closed: a prompt egress cannot read as text is refused, never forwarded. A legacy prompt may
be token ids (a list of integers, or a list of such lists): the model reads text egress cannot
see without the model's tokenizer, so it is refused with a precise 400 naming the fix.
"""

from __future__ import annotations

from typing import Any

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, ParsedRequest, Prompt, SegmentKind, TextSegment
from egress.wire.body import load_object, parsed
from egress.wire.segments import add_text

_TOKEN_IDS = (
    "prompt: token-id prompts cannot be inspected by the gateway (their text is known only to the "
    "model's tokenizer); send the prompt as a string or a list of strings"
)


def parse_completions(api: Api, body: bytes) -> ParsedRequest:
    """Legacy completions: `prompt` (a string or a list of strings) and `suffix`."""
    doc = load_object(body)
    out: list[TextSegment] = []
    _legacy_prompt(doc.get("prompt"), out)
    _suffix(doc.get("suffix"), out)
    return parsed(api, doc, Prompt(tuple(out)))


def parse_fim(api: Api, body: bytes) -> ParsedRequest:
    """FIM: `prompt` (a string) and `suffix`."""
    doc = load_object(body)
    out: list[TextSegment] = []
    _fim_prompt(doc.get("prompt"), out)
    _suffix(doc.get("suffix"), out)
    return parsed(api, doc, Prompt(tuple(out)))


def _suffix(suffix: Any, out: list[TextSegment]) -> None:
    """The code after the cursor: a string, or absent/null."""
    if suffix is not None and not isinstance(suffix, str):
        raise EgressError(ErrorCode.INVALID_REQUEST, "suffix: must be a string")
    add_text(suffix, ("suffix",), SegmentKind.MESSAGE, out)


def _legacy_prompt(prompt: Any, out: list[TextSegment]) -> None:
    """A string, or a list of strings (one completion each). Absent or null: the provider's
    default (`<|endoftext|>`), no text."""
    if prompt is None or isinstance(prompt, str):
        add_text(prompt, ("prompt",), SegmentKind.MESSAGE, out)
        return
    if not isinstance(prompt, list):
        raise EgressError(ErrorCode.INVALID_REQUEST, "prompt: must be a string or a list of strings")
    for i, item in enumerate(prompt):
        if isinstance(item, str):
            add_text(item, ("prompt", i), SegmentKind.MESSAGE, out)
        elif isinstance(item, int | list) and not isinstance(item, bool):
            raise EgressError(ErrorCode.INVALID_REQUEST, _TOKEN_IDS)
        else:
            raise EgressError(ErrorCode.INVALID_REQUEST, f"prompt[{i}]: must be a string")


def _fim_prompt(prompt: Any, out: list[TextSegment]) -> None:
    """FIM's prompt is the code before the cursor: a string (Mistral requires it; absent, the
    provider answers its own 422)."""
    if prompt is not None and not isinstance(prompt, str):
        raise EgressError(ErrorCode.INVALID_REQUEST, "prompt: must be a string")
    add_text(prompt, ("prompt",), SegmentKind.MESSAGE, out)
