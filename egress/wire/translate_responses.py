"""OpenAI Responses (Codex CLI) answered by a Chat Completions upstream.

Request mapping (Responses -> Chat):
- `instructions` -> the first, system, message; `input` as a string -> one user message;
- `message` items (also the type-less easy form): roles user / assistant, system and developer
  -> `system`; parts `input_text` / `output_text` / `refusal` -> text, `input_image` with an
  `image_url` -> an image part (a `file_id` or `input_file` has no Chat equivalent: refused);
- `function_call` -> an assistant `tool_calls` entry (joined to the assistant message just
  before it, so a turn's text and parallel calls are one Chat message), `function_call_output`
  -> a `role: tool` message (images in an output -> a user message after the tool messages);
- custom (freeform) tools: a custom tool becomes a function with one string parameter `input`
  (its grammar, if any, is quoted in that parameter's description); `custom_tool_call` history
  -> a tool call with arguments `{"input": "<raw input>"}`, `custom_tool_call_output` -> a tool
  message. A call of that function in the answer is turned back into a `custom_tool_call` item
  carrying the raw `input`, so Codex's apply_patch works unchanged;
- tools: `function` tools (flat `name` / `parameters`) -> Chat function tools; built-in tools
  (web / file search, code interpreter, image generation, remote MCP, tool search: run by
  OpenAI; computer, local_shell, shell, apply_patch: item types only OpenAI's models are trained
  to emit) are dropped, since a self-hosted model cannot use them and Codex sends function
  equivalents to other models; an unknown tool type is refused;
- `tool_choice`, `parallel_tool_calls`, `max_output_tokens` -> `max_tokens`, `temperature`,
  `top_p`, `text.format` (json_schema, json_object) -> `response_format`, `stream`;
- dropped: `reasoning` items (their summary and encrypted content are for OpenAI's models only),
  `reasoning`, `include`, `store`, `prompt_cache_key`, `metadata`, `text.verbosity`,
  `service_tier`, `truncation`, `user`, `safety_identifier`;
- refused: `previous_response_id`, `conversation` and `prompt` (stored state: Chat is stateless),
  `item_reference`, `compaction` (encrypted history only OpenAI can read) and every other item
  type that carries content and has no Chat equivalent.

Answer mapping (Chat -> Responses), streamed and not: text -> a `message` item with one
`output_text` part (`delta.refusal` text included: Codex reads only `output_text` parts); tool
calls -> `function_call` items (`fc_…` ids, the Chat id as `call_id`) or `custom_tool_call`
items; reasoning is not relayed (a reasoning item without OpenAI's encrypted content would be
refused if a later turn of the conversation went to OpenAI); while the model reasons, a
repeated `response.in_progress` keeps Codex's idle timer from firing. `finish_reason` length ->
status `incomplete`, reason `max_output_tokens`; content_filter -> `incomplete`, reason
`content_filter`; the terminal event is then `response.incomplete`, as OpenAI sends it (Codex
reports it as an error rather than taking the truncated answer as complete); otherwise
`response.completed`. Failures -> an `error` event and `response.failed`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
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

# Built-in tool types dropped from a translated request (see the module docs).
DROPPED_TOOLS = frozenset(
    {
        "web_search",
        "web_search_preview",
        "web_search_preview_2025_03_11",
        "web_search_2025_08_26",
        "file_search",
        "code_interpreter",
        "image_generation",
        "mcp",
        "tool_search",
        "computer",
        "computer_use_preview",
        "local_shell",
        "shell",
        "apply_patch",
    }
)
_ITEM_REFUSALS = {
    "item_reference": "refers to an item stored by OpenAI; Chat Completions is stateless",
    "compaction": "holds encrypted history that only OpenAI can read",
    "compaction_trigger": "asks for OpenAI's remote compaction",
}
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
# response.failed's error.code: the codes Codex acts on; anything else is reported as server_error.
_FAILED_CODES = frozenset({"rate_limit_exceeded", "context_length_exceeded", "insufficient_quota", "server_error"})
_TEXT_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


@dataclass(frozen=True, slots=True)
class RequestEcho:
    """What the answer repeats or needs from this exchange's request."""

    model: str = ""
    tools: list[Any] = field(default_factory=list)  # as the client sent them (serialised only at the end)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    custom_tools: frozenset[str] = frozenset()  # names answered as custom_tool_call items


# --- request ---------------------------------------------------------------------------------


def chat_request(doc: dict[str, Any], upstream_model: str | None) -> tuple[dict[str, Any], RequestEcho]:
    """A Responses request document as a Chat Completions request document, and its echo."""
    for key in ("previous_response_id", "conversation", "prompt"):
        if doc.get(key):
            raise invalid(key, "refers to state stored by OpenAI; Chat Completions is stateless")
    tools, custom = _tools(doc.get("tools"))
    chat: dict[str, Any] = {"model": upstream_model or doc.get("model"), "messages": _messages(doc)}
    if tools:
        chat["tools"] = tools
        if doc.get("tool_choice") is not None:
            chat["tool_choice"] = _tool_choice(doc["tool_choice"])
        if isinstance(doc.get("parallel_tool_calls"), bool):
            chat["parallel_tool_calls"] = doc["parallel_tool_calls"]
    if isinstance(doc.get("max_output_tokens"), int):
        chat["max_tokens"] = doc["max_output_tokens"]
    for key in ("temperature", "top_p"):
        if isinstance(doc.get(key), int | float) and not isinstance(doc.get(key), bool):
            chat[key] = doc[key]
    _response_format(doc.get("text"), chat)
    echo = RequestEcho(
        model=chat["model"] if isinstance(chat["model"], str) else "",
        tools=doc["tools"] if isinstance(doc.get("tools"), list) else [],
        tool_choice=doc.get("tool_choice") or "auto",
        parallel_tool_calls=doc.get("parallel_tool_calls") is not False,
        custom_tools=custom,
    )
    return chat, echo


def _messages(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    instructions = doc.get("instructions")
    if isinstance(instructions, str) and instructions:
        out.append({"role": "system", "content": instructions})
    items = doc.get("input")
    if isinstance(items, str):
        out.append({"role": "user", "content": items})
    elif isinstance(items, list):
        _Input(out).items(items)
    elif items is not None:
        raise invalid("input", "must be a string or a list of items")
    return merge_adjacent(out)


class _Input:
    """Appends Chat messages for Responses input items, keeping Chat's ordering rules:
    tool calls join the assistant message before them; images returned by tools wait until the
    run of tool messages is over."""

    __slots__ = ("_out", "_images")

    def __init__(self, out: list[dict[str, Any]]) -> None:
        self._out = out
        self._images: list[dict[str, Any]] = []

    def items(self, items: list[Any]) -> None:
        for i, item in enumerate(items):
            where = f"input[{i}]"
            if not isinstance(item, dict):
                raise invalid(where, "must be an object")
            kind = item.get("type") or ("message" if "role" in item else None)
            if kind == "message":
                self._message(item, where)
            elif kind in ("function_call", "custom_tool_call"):
                self._call(item, kind, where)
            elif kind in ("function_call_output", "custom_tool_call_output"):
                self._output(item, where)
            elif kind != "reasoning":
                reason = _ITEM_REFUSALS.get(kind, "has no Chat Completions equivalent")
                raise invalid(where, f"an item of type '{kind}' {reason}")
        self._flush_images()

    def _message(self, item: dict[str, Any], where: str) -> None:
        role = _TEXT_ROLES.get(item["role"]) if isinstance(item.get("role"), str) else None
        if role is None:
            raise invalid(f"{where}.role", "must be user, assistant, system or developer")
        self._flush_images()
        content = item.get("content")
        if isinstance(content, str):
            self._out.append({"role": role, "content": content})
            return
        if not isinstance(content, list):
            raise invalid(f"{where}.content", "must be a string or a list of parts")
        parts = [_part(part, f"{where}.content[{j}]") for j, part in enumerate(content)]
        if role != "user" and any(p["type"] != "text" for p in parts):
            raise invalid(f"{where}.content", f"a {role} message can carry only text in Chat Completions")
        self._out.append({"role": role, "content": message_content(parts)})

    def _call(self, item: dict[str, Any], kind: str, where: str) -> None:
        call_id = _string(item, "call_id", where)
        name = _string(item, "name", where)
        if kind == "function_call":
            arguments = _string(item, "arguments", where)
        else:
            arguments = orjson.dumps({"input": _string(item, "input", where)}).decode()
        self._flush_images()
        last = self._out[-1] if self._out else None
        if last is None or last["role"] != "assistant":
            last = {"role": "assistant", "content": ""}  # a string: llama-cpp-python rejects null
            self._out.append(last)
        last.setdefault("tool_calls", []).append(tool_call(call_id, name, arguments))

    def _output(self, item: dict[str, Any], where: str) -> None:
        call_id = _string(item, "call_id", where)
        output = item.get("output")
        if isinstance(output, str):
            text = output
        elif isinstance(output, list):
            text = self._output_parts(output, call_id, f"{where}.output")
        else:
            raise invalid(f"{where}.output", "must be a string or a list of parts")
        self._out.append({"role": "tool", "tool_call_id": call_id, "content": text})

    def _output_parts(self, output: list[Any], call_id: str, where: str) -> str:
        texts = []
        for k, raw in enumerate(output):
            part = _part(raw, f"{where}[{k}]")
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                add_tool_image(self._images, call_id, part)
        return "\n\n".join(texts)

    def _flush_images(self) -> None:
        if self._images:
            self._out.append({"role": "user", "content": self._images})
            self._images = []


def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise invalid(where, "must be an object")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _string(part, "text", where)}
    if kind == "refusal":
        return {"type": "text", "text": _string(part, "refusal", where)}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise invalid(where, "only images given by image_url can be sent to a Chat Completions model")
        return image_part(url)
    raise invalid(where, f"a '{kind}' part has no Chat Completions equivalent")


def _string(item: dict[str, Any], key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise invalid(f"{where}.{key}", "must be a string")
    return value


def _tools(tools: Any) -> tuple[list[dict[str, Any]], frozenset[str]]:
    if not isinstance(tools, list):
        return [], frozenset()
    out: list[dict[str, Any]] = []
    custom: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid(where, "must be an object")
        kind = tool.get("type")
        if kind == "function":
            name = _string(tool, "name", where)
            out.append(function_tool(name, tool.get("description"), tool.get("parameters"), tool.get("strict")))
        elif kind == "custom":
            name = _string(tool, "name", where)
            out.append(function_tool(name, tool.get("description"), _custom_parameters(tool.get("format"))))
            custom.add(name)
        elif kind not in DROPPED_TOOLS:
            raise invalid(f"{where}.type", f"a '{kind}' tool has no Chat Completions equivalent")
    return out, frozenset(custom)


def _custom_parameters(fmt: Any) -> dict[str, Any]:
    """A freeform tool's input as the one string parameter `input`; its grammar told in words."""
    hint = "The tool's whole input, as plain text (not JSON)."
    if isinstance(fmt, dict) and fmt.get("type") == "grammar" and isinstance(fmt.get("definition"), str):
        hint += f" It must match this {fmt.get('syntax', 'lark')} grammar:\n{fmt['definition']}"
    return {
        "type": "object",
        "properties": {"input": {"type": "string", "description": hint}},
        "required": ["input"],
        "additionalProperties": False,
    }


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") in ("function", "custom"):
        return {"type": "function", "function": {"name": _string(choice, "name", "tool_choice")}}
    kind = choice.get("type") if isinstance(choice, dict) else choice
    raise invalid("tool_choice", f"'{kind}' has no Chat Completions equivalent")


def _response_format(text: Any, chat: dict[str, Any]) -> None:
    fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}


# --- answers ---------------------------------------------------------------------------------


def usage_object(usage: ChatUsage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens or 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


@dataclass(slots=True)
class ResponseHead:
    """The fields of the response object that every lifecycle event repeats."""

    echo: RequestEcho
    id: str
    created_at: int
    model: str

    def object(self, status: str, output: list[Any], *, final: bool = False, **extra: Any) -> dict[str, Any]:
        """The response object. The request's tools are echoed only in the final one: the
        lifecycle events before the first token stay small (Codex reads none of them)."""
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": self.echo.parallel_tool_calls,
            "tool_choice": self.echo.tool_choice,
            "tools": self.echo.tools if final else [],
            "usage": None,
        }
        obj.update(extra)
        return obj


def outcome(finish_reason: str | None) -> tuple[str, dict[str, Any]]:
    """(status, extra response fields) for a Chat finish_reason."""
    reason = _INCOMPLETE.get(finish_reason or "stop")
    if reason is None:
        return "completed", {}
    return "incomplete", {"incomplete_details": {"reason": reason}}


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": [part]}


def call_item(item_id: str, call_id: str, name: str, arguments: str, custom: bool, status: str) -> dict[str, Any]:
    if custom:
        return {
            "id": item_id,
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": name,
            "input": custom_input(arguments),
        }
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def custom_input(arguments: str) -> str:
    """The raw input of a custom tool call: `input` of the function arguments; the arguments
    themselves when the model did not write `{"input": "<string>"}`."""
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get("input"), str):
        return value["input"]
    return arguments


def response_object(answer: ChatAnswer, echo: RequestEcho) -> dict[str, Any]:
    status, extra = outcome(answer.finish_reason)
    item_status = "incomplete" if status == "incomplete" else "completed"
    output: list[dict[str, Any]] = []
    if answer.text:
        output.append(message_item(new_id("msg_"), answer.text, item_status))
    for call in answer.tool_calls:
        custom = call.name in echo.custom_tools
        item_id = new_id("ctc_" if custom else "fc_")
        output.append(call_item(item_id, call.call_id, call.name, call.arguments, custom, item_status))
    head = ResponseHead(echo, new_id("resp_"), answer.created or 0, answer.model or echo.model)
    return head.object(status, output, final=True, usage=usage_object(answer.usage), **extra)


def error_code(fault: UpstreamFault) -> str:
    return "context_length_exceeded" if fault.context_overflow else fault.code


def error_object(fault: UpstreamFault) -> dict[str, Any]:
    """OpenAI's error object; the upstream's own `type` is kept when it gave one."""
    kind = fault.kind or ("invalid_request_error" if 400 <= fault.status < 500 else "server_error")
    return {"message": fault.message, "type": kind, "param": None, "code": error_code(fault)}


class ResponsesTranslator:
    """One exchange's translation (a new one per request: the answer echoes the request)."""

    upstream_path = UPSTREAM_PATH

    __slots__ = ("_echo",)

    def __init__(self) -> None:
        self._echo = RequestEcho()

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
        chat, self._echo = chat_request(doc, upstream_model)
        return finish_request(chat, doc.get("stream"), max_tokens_cap, system_in_user)

    def response(self, status: int, raw: bytes) -> tuple[int, bytes]:
        """(status for the client, Responses body). A 2xx that is not a Chat answer becomes 502."""
        return translate_answer(
            status, raw, lambda answer: response_object(answer, self._echo), lambda f: {"error": error_object(f)}
        )

    def response_body(self, status: int, raw: bytes) -> bytes:
        return self.response(status, raw)[1]

    def stream(self) -> ResponsesStream:
        return ResponsesStream(self._echo)


_TEXT_DELTA = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":'
_ARGS_DELTA = (
    b"event: response.function_call_arguments.delta\n"
    b'data: {"type":"response.function_call_arguments.delta","sequence_number":'
)


class ResponsesStream(ChatStreamTranslation):
    """Chat chunks in, Responses events out, `sequence_number` counting from 0 without gaps."""

    def __init__(self, echo: RequestEcho, clock: Callable[[], int] = time.monotonic_ns) -> None:
        super().__init__(echo.model, clock)
        self._echo = echo
        self._seq = 0
        self._head = ResponseHead(echo, new_id("resp_"), 0, echo.model)
        self._output: list[dict[str, Any]] = []  # finished items, in output_index order

    def _event(self, kind: str, fields: dict[str, Any], out: list[bytes]) -> None:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        out.append(encode_event(kind, orjson.dumps(event)))

    def _lifecycle(self, kind: str, status: str, out: list[bytes], **extra: Any) -> None:
        self._event(kind, {"response": self._head.object(status, self._output, **extra)}, out)

    def _on_start(self, meta: StreamMeta, out: list[bytes]) -> None:
        self._head.created_at = meta.created
        self._head.model = meta.model
        self._lifecycle("response.created", "in_progress", out)
        self._lifecycle("response.in_progress", "in_progress", out)

    def _on_keepalive(self, out: list[bytes]) -> None:
        self._lifecycle("response.in_progress", "in_progress", out)

    def _custom(self, block: Block) -> bool:
        return block.kind is BlockKind.TOOL and block.name in self._echo.custom_tools

    def _holds(self, name: str) -> bool:
        # A custom tool's raw input is inside a JSON string: it is decoded once the call is whole.
        return name in self._echo.custom_tools

    def _open(self, block: Block, out: list[bytes]) -> None:
        if block.kind is BlockKind.TEXT:
            block.item_id = new_id("msg_")
            item: dict[str, Any] = {
                "id": block.item_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
        else:
            block.item_id = new_id("ctc_" if self._custom(block) else "fc_")
            item = call_item(block.item_id, block.call_id, block.name, "", self._custom(block), "in_progress")
        self._event("response.output_item.added", {"output_index": block.index, "item": item}, out)
        if block.kind is BlockKind.TEXT:
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            fields = {"item_id": block.item_id, "output_index": block.index, "content_index": 0, "part": part}
            self._event("response.content_part.added", fields, out)

    def _delta(self, block: Block, text: str, out: list[bytes]) -> None:
        seq = self._seq
        if block.kind is BlockKind.TEXT:
            self._seq += 1
            out.append(
                b'%s%d,"item_id":"%s","output_index":%d,"content_index":0,"delta":%s,"logprobs":[]}\n\n'
                % (_TEXT_DELTA, seq, block.item_id.encode(), block.index, orjson.dumps(text))
            )
        elif not self._custom(block):
            self._seq += 1
            out.append(
                b'%s%d,"item_id":"%s","output_index":%d,"delta":%s}\n\n'
                % (_ARGS_DELTA, seq, block.item_id.encode(), block.index, orjson.dumps(text))
            )

    def _close(self, block: Block, out: list[bytes]) -> None:
        status = "incomplete" if outcome(self._finish_reason)[0] == "incomplete" else "completed"
        if block.kind is BlockKind.TEXT:
            item = self._close_text(block, status, out)
        elif self._custom(block):
            item = self._close_custom(block, status, out)
        else:
            item = self._close_function(block, status, out)
        self._output.append(item)
        self._event("response.output_item.done", {"output_index": block.index, "item": item}, out)

    def _close_text(self, block: Block, status: str, out: list[bytes]) -> dict[str, Any]:
        item = message_item(block.item_id, block.content, status)
        where = {"item_id": block.item_id, "output_index": block.index, "content_index": 0}
        self._event("response.output_text.done", {**where, "text": block.content, "logprobs": []}, out)
        self._event("response.content_part.done", {**where, "part": item["content"][0]}, out)
        return item

    def _close_function(self, block: Block, status: str, out: list[bytes]) -> dict[str, Any]:
        item = call_item(block.item_id, block.call_id, block.name, block.content, False, status)
        fields = {"item_id": block.item_id, "output_index": block.index, "arguments": block.content}
        self._event("response.function_call_arguments.done", fields, out)
        return item

    def _close_custom(self, block: Block, status: str, out: list[bytes]) -> dict[str, Any]:
        item = call_item(block.item_id, block.call_id, block.name, block.content, True, status)
        where = {"item_id": block.item_id, "output_index": block.index}
        if item["input"]:
            self._event("response.custom_tool_call_input.delta", {**where, "delta": item["input"]}, out)
        self._event("response.custom_tool_call_input.done", {**where, "input": item["input"]}, out)
        return item

    def _on_complete(self, finish_reason: str, usage: ChatUsage, tool_calls: int, out: list[bytes]) -> None:
        status, extra = outcome(finish_reason)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        self._lifecycle(kind, status, out, final=True, usage=usage_object(usage), **extra)

    def _on_error(self, fault: UpstreamFault, out: list[bytes]) -> None:
        code = error_code(fault)
        self._event("error", {"code": code, "message": fault.message, "param": None}, out)
        failed = {"code": code if code in _FAILED_CODES else "server_error", "message": fault.message}
        self._lifecycle("response.failed", "failed", out, final=True, error=failed)
