"""Decoding a client's JSON body into a document, with precise errors for every way it can be wrong."""

from __future__ import annotations

from typing import Any

import orjson

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, ParsedRequest, Prompt


def load_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise EgressError(ErrorCode.INVALID_REQUEST, "request body is empty; expected a JSON object")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise EgressError(
                ErrorCode.INVALID_UTF8,
                f"request body is not valid UTF-8 (invalid byte at offset {uexc.start})",
            ) from None
        raise EgressError(
            ErrorCode.INVALID_JSON, f"request body is not valid JSON: {exc.msg} at offset {exc.pos}"
        ) from None
    if not isinstance(doc, dict):
        raise EgressError(
            ErrorCode.INVALID_REQUEST,
            f"request body must be a JSON object, not {type(doc).__name__}",
        )
    return doc


def parsed(api: Api, doc: dict[str, Any], prompt: Prompt, *, model_required: bool = True) -> ParsedRequest:
    """Validate the fields egress itself relies on; every other field is the provider's business."""
    model = doc.get("model")
    if model is None and model_required:
        raise EgressError(ErrorCode.INVALID_REQUEST, "model: field required")
    if model is not None and not isinstance(model, str):
        raise EgressError(ErrorCode.INVALID_REQUEST, "model: must be a string")
    stream = doc.get("stream", False)
    if not isinstance(stream, bool):
        raise EgressError(ErrorCode.INVALID_REQUEST, "stream: must be a boolean")
    return ParsedRequest(api=api, model=model or "", stream=stream, document=doc, prompt=prompt)
