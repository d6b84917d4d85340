"""Building the pieces of a Chat Completions request: what every translation to Chat shares."""

from __future__ import annotations

import os
from typing import Any

import orjson

from egress.core.errors import EgressError, ErrorCode


def new_id(prefix: str) -> str:
    """A fresh opaque id: the prefix the client's API uses, then 24 hex digits."""
    return prefix + os.urandom(12).hex()


# --- request pieces --------------------------------------------------------------------------


def function_tool(name: Any, description: Any, parameters: Any, strict: Any = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if isinstance(description, str) and description:
        function["description"] = description
    function["parameters"] = parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}
    if isinstance(strict, bool):
        function["strict"] = strict
    return {"type": "function", "function": function}


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def add_tool_image(images: list[dict[str, Any]], call_id: str, part: dict[str, Any]) -> None:
    """Collect an image a tool returned: Chat tool messages carry text only, so the images go in a
    user message after the tool messages, each labelled with its call."""
    if not images:
        images.append({"type": "text", "text": "Images returned by the tool calls above:"})
    images.append({"type": "text", "text": f"(image from tool call {call_id})"})
    images.append(part)


def message_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Text-only content as one string (what every Chat server accepts), else the list of parts."""
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def merge_adjacent(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join consecutive user (or system) messages whose content is a string.

    Agents send several user items in a row (instructions, environment, the prompt); strict chat
    templates (Gemma, Llama) reject roles that do not alternate. The model sees the same text."""
    out: list[dict[str, Any]] = []
    for message in messages:
        last = out[-1] if out else None
        if (
            last is not None
            and message["role"] in ("user", "system")
            and last["role"] == message["role"]
            and isinstance(last["content"], str)
            and isinstance(message["content"], str)
        ):
            last["content"] = last["content"] + "\n\n" + message["content"]
        else:
            out.append(message)
    return out


def fold_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The system messages' text at the top of the first user message instead.

    For chat templates that drop system messages (llama-cpp-python's `gemma` format, strict
    templates that refuse a system turn after the first): the model then still reads the
    agent's instructions, as Gemma's own template places them. Texts keep their order."""
    system = [m["content"] for m in messages if m["role"] == "system" and isinstance(m["content"], str)]
    if not system:
        return messages
    rest = [m for m in messages if not (m["role"] == "system" and isinstance(m["content"], str))]
    text = "\n\n".join(system)
    for i, message in enumerate(rest):
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, str):
                rest[i] = {**message, "content": f"{text}\n\n{content}"}
            else:
                rest[i] = {**message, "content": [{"type": "text", "text": text}, *content]}
            return rest
    return [{"role": "user", "content": text}, *rest]


def finish_request(
    chat: dict[str, Any], stream: Any, max_tokens_cap: int | None, system_in_user: bool = False
) -> bytes:
    """Set the streaming fields (usage is asked for: the client's API reports it), cap the
    answer's length, fold system messages into the first user turn if the endpoint asks, and
    serialise.

    The cap is the endpoint's: self-hosted servers refuse a request whose prompt plus
    `max_tokens` exceeds their context (llama.cpp, vLLM), and Claude Code asks for 32,000."""
    if max_tokens_cap is not None:
        chat["max_tokens"] = min(chat.get("max_tokens", max_tokens_cap), max_tokens_cap)
    if system_in_user:
        chat["messages"] = fold_system(chat["messages"])
    if stream is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return orjson.dumps(chat)


def invalid(where: str, message: str) -> EgressError:
    return EgressError(ErrorCode.INVALID_REQUEST, f"{where}: {message}")
