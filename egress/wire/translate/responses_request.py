"""The request half of Responses -> Chat (the mapping is documented in `translate.responses`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from egress.wire.translate.chat_request import (
    add_tool_image,
    function_tool,
    image_part,
    invalid,
    merge_adjacent,
    message_content,
    tool_call,
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
_ITEM_REFUSALS: dict[str | None, str] = {
    "item_reference": "refers to an item stored by OpenAI; Chat Completions is stateless",
    "compaction": "holds encrypted history that only OpenAI can read",
    "compaction_trigger": "asks for OpenAI's remote compaction",
}
_TEXT_ROLES = {"user": "user", "assistant": "assistant", "system": "system", "developer": "system"}


@dataclass(frozen=True, slots=True)
class RequestEcho:
    """What the answer repeats or needs from this exchange's request."""

    model: str = ""
    tools: list[Any] = field(default_factory=list)  # as the client sent them (serialised only at the end)
    tool_choice: Any = "auto"
    parallel_tool_calls: bool = True
    custom_tools: frozenset[str] = frozenset()  # names answered as custom_tool_call items


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
