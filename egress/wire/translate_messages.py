"""Anthropic Messages (Claude Code) answered by a Chat Completions upstream.

Request mapping (Messages -> Chat):
- `system` (string or text blocks, joined by a blank line) -> the first, system, message;
- user content: `tool_result` blocks -> `role: tool` messages, in order, *before* the rest of the
  turn (Chat requires tool messages right after the assistant's `tool_calls`); `is_error` ->
  the text is prefixed with `[tool error]`; images in a tool result -> a user message after the
  tool messages; text, `image` (base64 -> data URL, or url) and text `document` blocks -> the user
  message (text-only content is one string);
- assistant content: text -> `content`, `tool_use` -> `tool_calls` (input serialised to a JSON
  string, `toolu_…` ids unchanged); `thinking` / `redacted_thinking` are dropped (signed for
  Anthropic only; a Chat model cannot use them);
- `tools` -> function tools (`input_schema` -> `parameters`); Anthropic server tools (a `type`
  other than `custom`: web search, bash, text editor, computer) are dropped: they run on
  Anthropic's side and a self-hosted model cannot call them;
- `tool_choice` auto/any/tool/none -> auto/required/{function}/none, `disable_parallel_tool_use`
  -> `parallel_tool_calls: false`; `max_tokens`, `temperature`, `top_p`, `top_k`,
  `stop_sequences` -> `stop`; `output_config.format` json_schema -> `response_format`;
- dropped: `cache_control`, `metadata`, `thinking`, `context_management`, `service_tier`,
  `output_config.effort` and every field Chat has no use for. A block type with content and no
  Chat equivalent (server tool results, PDF documents, …) is refused with a precise error.

Answer mapping (Chat -> Messages), streamed and not:
- `finish_reason` stop -> `end_turn` (Chat does not say which stop sequence matched, so
  `stop_sequence` is null), length -> `max_tokens`, tool_calls (or any finish after a tool call)
  -> `tool_use`, content_filter -> `refusal` (Anthropic's "the answer was stopped by a safety
  filter"; the text so far stays), anything else -> `end_turn`;
- `delta.refusal` text is relayed as text; reasoning (`reasoning_content`) is not relayed: a
  thinking block needs an Anthropic signature, and an unsigned one would break the next turn if
  policy routes it to Anthropic. While the model reasons, `ping` events keep the stream alive;
- `message_start` carries zero usage (Chat reports usage at the end); `message_delta` carries
  the final `input_tokens` / `output_tokens` (and `cache_read_input_tokens` when reported), so it
  is held until the usage chunk, `[DONE]` or the end of the stream.
"""

from __future__ import annotations

from typing import Any

import orjson

from egress.wire.body import load_object
from egress.wire.sse import encode_event
from egress.wire.translate_chat import (
    UPSTREAM_PATH,
    Block,
    BlockKind,
    ChatAnswer,
    ChatStreamTranslation,
    ChatUsage,
    StreamMeta,
    UpstreamFault,
    add_tool_image,
    finish_request,
    function_tool,
    image_part,
    invalid,
    merge_adjacent,
    message_content,
    new_id,
    tool_call,
    translate_answer,
)

STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# Anthropic error type by HTTP status (the documented list; unknown statuses are api_error).
ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}

_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_TOOL_ERROR_PREFIX = "[tool error]\n"


# --- request ---------------------------------------------------------------------------------


def chat_request(doc: dict[str, Any], upstream_model: str | None) -> dict[str, Any]:
    """A Messages request document as a Chat Completions request document."""
    chat: dict[str, Any] = {"model": upstream_model or doc.get("model"), "messages": _messages(doc)}
    tools = _tools(doc.get("tools"))
    if tools:
        chat["tools"] = tools
        _tool_choice(doc.get("tool_choice"), chat)
    if isinstance(doc.get("max_tokens"), int):
        chat["max_tokens"] = doc["max_tokens"]
    for key in ("temperature", "top_p", "top_k"):
        if isinstance(doc.get(key), int | float) and not isinstance(doc.get(key), bool):
            chat[key] = doc[key]
    stop = doc.get("stop_sequences")
    if isinstance(stop, list) and stop:
        chat["stop"] = stop
    _response_format(doc.get("output_config"), chat)
    return chat


def _messages(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = _system_text(doc.get("system"))
    if system:
        out.append({"role": "system", "content": system})
    messages = doc.get("messages")
    if not isinstance(messages, list):
        raise invalid("messages", "must be a list")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise invalid(where, "must be an object")
        role = message.get("role")
        content = message.get("content")
        if role not in ("user", "assistant"):
            raise invalid(f"{where}.role", "must be 'user' or 'assistant'")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
        elif not isinstance(content, list):
            raise invalid(f"{where}.content", "must be a string or a list of blocks")
        elif role == "user":
            _user_turn(content, where, out)
        else:
            out.append(_assistant_turn(content, where))
    return merge_adjacent(out)


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if not isinstance(system, list):
        return ""
    texts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise invalid(f"system[{i}]", "only text blocks can be sent to a Chat Completions model")
        texts.append(block["text"])
    return "\n\n".join(texts)


def _user_turn(blocks: list[Any], where: str, out: list[dict[str, Any]]) -> None:
    """Tool results first (as `tool` messages), then one user message with everything else."""
    parts: list[dict[str, Any]] = []
    result_images: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = _block_type(block, at)
        if kind == "tool_result":
            out.append(_tool_message(block, at, result_images))
        elif kind not in _DROPPED_BLOCKS:
            parts.append(_user_part(block, kind, at))
    parts = result_images + parts
    if parts:
        out.append({"role": "user", "content": message_content(parts)})


def _user_part(block: dict[str, Any], kind: str, at: str) -> dict[str, Any]:
    if kind == "text":
        return {"type": "text", "text": _string(block, "text", at)}
    if kind == "image":
        return image_part(_image_url(block.get("source"), at))
    if kind == "document":
        return {"type": "text", "text": _document_text(block, at)}
    raise invalid(at, f"a '{kind}' block has no Chat Completions equivalent")


def _tool_message(block: dict[str, Any], at: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    call_id = _string(block, "tool_use_id", at)
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        text = _tool_result_text(content, call_id, f"{at}.content", images)
    else:
        raise invalid(f"{at}.content", "must be a string or a list of blocks")
    if block.get("is_error") is True:
        text = _TOOL_ERROR_PREFIX + text
    return {"role": "tool", "tool_call_id": call_id, "content": text}


def _tool_result_text(content: list[Any], call_id: str, at: str, images: list[dict[str, Any]]) -> str:
    texts: list[str] = []
    for k, inner in enumerate(content):
        where = f"{at}[{k}]"
        kind = _block_type(inner, where)
        if kind == "text":
            texts.append(_string(inner, "text", where))
        elif kind == "image":
            add_tool_image(images, call_id, image_part(_image_url(inner.get("source"), where)))
        elif kind == "document":
            texts.append(_document_text(inner, where))
        elif kind == "tool_reference":
            texts.append(f"Tool loaded: {_string(inner, 'tool_name', where)}")
        else:
            raise invalid(where, f"a '{kind}' block in a tool result has no Chat Completions equivalent")
    return "\n\n".join(texts)


def _assistant_turn(blocks: list[Any], where: str) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = _block_type(block, at)
        if kind == "text":
            texts.append(_string(block, "text", at))
        elif kind == "tool_use":
            calls.append(_tool_use_call(block, at))
        elif kind not in _DROPPED_BLOCKS:
            raise invalid(at, f"a '{kind}' block has no Chat Completions equivalent")
    # content is a string even beside tool calls: llama-cpp-python answers 500 to `null` there.
    message: dict[str, Any] = {"role": "assistant", "content": "\n\n".join(texts)}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_use_call(block: dict[str, Any], at: str) -> dict[str, Any]:
    tool_input = block.get("input", {})
    if not isinstance(tool_input, dict):
        raise invalid(f"{at}.input", "must be an object")
    return tool_call(_string(block, "id", at), _string(block, "name", at), orjson.dumps(tool_input).decode())


def _block_type(block: Any, at: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise invalid(at, "must be a content block with a type")
    return block["type"]


def _string(block: dict[str, Any], key: str, at: str) -> str:
    value = block.get(key)
    if not isinstance(value, str):
        raise invalid(f"{at}.{key}", "must be a string")
    return value


def _image_url(source: Any, at: str) -> str:
    if isinstance(source, dict) and source.get("type") == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if isinstance(media_type, str) and isinstance(data, str):
            return f"data:{media_type};base64,{data}"
    if isinstance(source, dict) and source.get("type") == "url" and isinstance(source.get("url"), str):
        return source["url"]
    raise invalid(f"{at}.source", "only base64 and url images can be sent to a Chat Completions model")


def _document_text(block: dict[str, Any], at: str) -> str:
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text" and isinstance(source.get("data"), str):
        title = block.get("title")
        return f"{title}\n\n{source['data']}" if isinstance(title, str) and title else source["data"]
    raise invalid(f"{at}.source", "only plain-text documents can be sent to a Chat Completions model")


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        return []
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid(f"tools[{i}]", "must be an object")
        if tool.get("type", "custom") != "custom":
            continue  # a server tool (web search, bash, …): runs on Anthropic's side only
        name = _string(tool, "name", f"tools[{i}]")
        out.append(function_tool(name, tool.get("description"), tool.get("input_schema"), tool.get("strict")))
    return out


def _tool_choice(choice: Any, chat: dict[str, Any]) -> None:
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind == "auto":
        chat["tool_choice"] = "auto"
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "none":
        chat["tool_choice"] = "none"
    elif kind == "tool":
        chat["tool_choice"] = {"type": "function", "function": {"name": _string(choice, "name", "tool_choice")}}
    else:
        raise invalid("tool_choice.type", f"'{kind}' has no Chat Completions equivalent")
    if choice.get("disable_parallel_tool_use") is True:
        chat["parallel_tool_calls"] = False


def _response_format(config: Any, chat: dict[str, Any]) -> None:
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema" and isinstance(fmt.get("schema"), dict):
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}


# --- answers ---------------------------------------------------------------------------------


def stop_reason(finish_reason: str | None, tool_calls: int) -> str:
    if tool_calls and finish_reason in ("stop", "tool_calls", None):
        return "tool_use"
    return STOP_REASON.get(finish_reason or "stop", "end_turn")


def usage_object(usage: ChatUsage) -> dict[str, Any]:
    out: dict[str, Any] = {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}
    if usage.cached_tokens is not None:
        out["cache_read_input_tokens"] = usage.cached_tokens
    return out


def message_object(answer: ChatAnswer, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.text:
        content.append({"type": "text", "text": answer.text})
    for call in answer.tool_calls:
        content.append(
            {"type": "tool_use", "id": call.call_id, "name": call.name, "input": _tool_input(call.arguments)}
        )
    return {
        "id": new_id("msg_"),
        "type": "message",
        "role": "assistant",
        "model": answer.model or model,
        "content": content,
        "stop_reason": stop_reason(answer.finish_reason, len(answer.tool_calls)),
        "stop_sequence": None,
        "usage": usage_object(answer.usage),
    }


def _tool_input(arguments: str) -> dict[str, Any]:
    """The arguments as an object; `{}` when the model wrote none or wrote invalid JSON (the
    agent's input validation then tells the model, which is what it does for a bad call)."""
    try:
        value = orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def error_object(fault: UpstreamFault) -> dict[str, Any]:
    message = fault.message
    if fault.context_overflow and not message.startswith("prompt is too long"):
        # Anthropic's wording, which Claude Code recognises (it offers to compact the conversation).
        message = f"prompt is too long: {message}"
    return {"type": "error", "error": {"type": ERROR_TYPE.get(fault.status, "api_error"), "message": message}}


def error_event(fault: UpstreamFault) -> bytes:
    return encode_event("error", orjson.dumps(error_object(fault)))


class MessagesTranslator:
    """One exchange's translation (a new one per request: it remembers the request's model)."""

    upstream_path = UPSTREAM_PATH

    __slots__ = ("_model",)

    def __init__(self) -> None:
        self._model = ""

    def request_body(
        self,
        body: bytes,
        upstream_model: str | None,
        *,
        max_tokens_cap: int | None = None,
        document: dict[str, Any] | None = None,
        system_in_user: bool = False,
    ) -> bytes:
        doc = document if document is not None else load_object(body)
        chat = chat_request(doc, upstream_model)
        self._model = chat["model"] if isinstance(chat["model"], str) else ""
        return finish_request(chat, doc.get("stream"), max_tokens_cap, system_in_user)

    def response(self, status: int, raw: bytes) -> tuple[int, bytes]:
        """(status for the client, Messages body). A 2xx that is not a Chat answer becomes 502."""
        return translate_answer(status, raw, lambda answer: message_object(answer, self._model), error_object)

    def response_body(self, status: int, raw: bytes) -> bytes:
        return self.response(status, raw)[1]

    def stream(self) -> MessagesStream:
        return MessagesStream(self._model)


# Event prefixes for the hot path: one per event type, the JSON written around the variable parts.
_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
_PING = encode_event("ping", b'{"type": "ping"}')
_MESSAGE_STOP = encode_event("message_stop", b'{"type":"message_stop"}')


class MessagesStream(ChatStreamTranslation):
    """Chat chunks in, Anthropic Messages events out (framed as Anthropic frames them)."""

    def _on_start(self, meta: StreamMeta, out: list[bytes]) -> None:
        message = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": meta.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(encode_event("message_start", orjson.dumps({"type": "message_start", "message": message})))

    def _open(self, block: Block, out: list[bytes]) -> None:
        if block.kind is BlockKind.TEXT:
            content: dict[str, Any] = {"type": "text", "text": ""}
        else:
            content = {"type": "tool_use", "id": block.call_id, "name": block.name, "input": {}}
        event = {"type": "content_block_start", "index": block.index, "content_block": content}
        out.append(encode_event("content_block_start", orjson.dumps(event)))

    def _delta(self, block: Block, text: str, out: list[bytes]) -> None:
        if block.kind is BlockKind.TEXT:
            out.append(b'%s%d,"delta":{"type":"text_delta","text":%s}}\n\n' % (_DELTA, block.index, orjson.dumps(text)))
        else:
            out.append(
                b'%s%d,"delta":{"type":"input_json_delta","partial_json":%s}}\n\n'
                % (_DELTA, block.index, orjson.dumps(text))
            )

    def _close(self, block: Block, out: list[bytes]) -> None:
        out.append(b"%s%d}\n\n" % (_STOP, block.index))

    def _on_complete(self, finish_reason: str, usage: ChatUsage, tool_calls: int, out: list[bytes]) -> None:
        event = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(finish_reason, tool_calls), "stop_sequence": None},
            "usage": usage_object(usage),
        }
        out.append(encode_event("message_delta", orjson.dumps(event)))
        out.append(_MESSAGE_STOP)

    def _on_error(self, fault: UpstreamFault, out: list[bytes]) -> None:
        out.append(error_event(fault))

    def _on_keepalive(self, out: list[bytes]) -> None:
        out.append(_PING)
