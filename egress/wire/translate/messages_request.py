"""The request half of Messages -> Chat (the mapping is documented in `translate.messages`)."""

from __future__ import annotations

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

_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_TOOL_ERROR_PREFIX = "[tool error]\n"


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
    kind: str = block["type"]
    return kind


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
        url: str = source["url"]
        return url
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
