"""The request half of Gemini -> Chat (the mapping is documented in `translate.gemini`)."""

from __future__ import annotations

from typing import Any

import orjson

from egress.wire.translate.chat_request import (
    function_tool,
    image_part,
    invalid,
    merge_adjacent,
    message_content,
    new_id,
    tool_call,
)

# Part keys that carry no content of their own (a thought summary's flag, the signature).
_PART_META = frozenset({"thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"})
_FINISH_TOOL_CHOICE = {"AUTO": "auto", "ANY": "required", "NONE": "none", "VALIDATED": "auto"}


def chat_request(doc: dict[str, Any], model: str | None) -> dict[str, Any]:
    """A Gemini generateContent request document as a Chat Completions request document."""
    if not model:
        raise invalid("model", "no model was named in the path")
    chat: dict[str, Any] = {"model": model, "messages": _messages(doc)}
    tools = _tools(doc.get("tools"))
    if tools:
        chat["tools"] = tools
        _tool_choice(doc.get("toolConfig"), chat)
    _generation(doc.get("generationConfig"), chat)
    return chat


def _messages(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    system = doc.get("systemInstruction")
    if system is not None:
        text = _system_text(system)
        if text:
            out.append({"role": "system", "content": text})
    contents = doc.get("contents")
    if not isinstance(contents, list):
        raise invalid("contents", "must be a list")
    pending: dict[str, list[str]] = {}  # call ids by function name, not yet answered
    for i, content in enumerate(contents):
        where = f"contents[{i}]"
        if not isinstance(content, dict):
            raise invalid(where, "must be an object")
        parts = content.get("parts", [])
        if not isinstance(parts, list):
            raise invalid(f"{where}.parts", "must be a list")
        role = content.get("role", "user")
        if role == "model":
            message = _model_turn(parts, where, pending)
            if message is not None:
                out.append(message)
        elif role in ("user", "function"):
            _user_turn(parts, where, pending, out)
        else:
            raise invalid(f"{where}.role", "must be 'user' or 'model'")
    return merge_adjacent(out)


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    parts = system.get("parts") if isinstance(system, dict) else None
    if not isinstance(parts, list):
        raise invalid("systemInstruction", "must be a Content with parts")
    texts = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict) or not isinstance(part.get("text"), str):
            raise invalid(f"systemInstruction.parts[{j}]", "only text parts can be sent to a Chat Completions model")
        texts.append(part["text"])
    return "\n\n".join(texts)


def _kind(part: Any, at: str) -> str:
    """The part's one data field (text, functionCall, ...)."""
    if not isinstance(part, dict):
        raise invalid(at, "must be a part object")
    kinds: list[str] = [k for k in part if k not in _PART_META]
    if len(kinds) != 1:
        raise invalid(at, "must hold exactly one kind of data")
    return kinds[0]


def _user_turn(parts: list[Any], where: str, pending: dict[str, list[str]], out: list[dict[str, Any]]) -> None:
    """Function responses first (as `tool` messages), then one user message with the rest."""
    rest: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        at = f"{where}.parts[{j}]"
        kind = _kind(part, at)
        if part.get("thought") is True:
            continue
        if kind == "functionResponse":
            out.append(_tool_message(part["functionResponse"], at, pending))
        elif kind == "text":
            rest.append({"type": "text", "text": _string(part, "text", at)})
        elif kind == "inlineData":
            rest.append(image_part(_data_url(part["inlineData"], f"{at}.inlineData")))
        else:
            raise invalid(at, f"a '{kind}' part has no Chat Completions equivalent")
    if rest:
        out.append({"role": "user", "content": message_content(rest)})


def _tool_message(response: Any, at: str, pending: dict[str, list[str]]) -> dict[str, Any]:
    if not isinstance(response, dict):
        raise invalid(f"{at}.functionResponse", "must be an object")
    name = _string(response, "name", f"{at}.functionResponse")
    call_id = response.get("id")
    waiting = pending.get(name, [])
    if isinstance(call_id, str) and call_id:
        if call_id in waiting:
            waiting.remove(call_id)
    elif waiting:
        call_id = waiting.pop(0)  # Gemini pairs a call and its response by name, in order
    else:
        raise invalid(f"{at}.functionResponse", f"answers no earlier call of {name!r}")
    body = response.get("response", {})
    return {"role": "tool", "tool_call_id": call_id, "content": orjson.dumps(body).decode()}


def _model_turn(parts: list[Any], where: str, pending: dict[str, list[str]]) -> dict[str, Any] | None:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, part in enumerate(parts):
        at = f"{where}.parts[{j}]"
        kind = _kind(part, at)
        if part.get("thought") is True:
            continue  # a thought summary: Gemini's own, the Chat model never wrote it
        if kind == "text":
            texts.append(_string(part, "text", at))
        elif kind == "functionCall":
            calls.append(_call(part["functionCall"], f"{at}.functionCall", pending))
        else:
            raise invalid(at, f"a '{kind}' part has no Chat Completions equivalent")
    if not texts and not calls:
        return None
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts)}
    if calls:
        message["tool_calls"] = calls
    return message


def _call(call: Any, at: str, pending: dict[str, list[str]]) -> dict[str, Any]:
    if not isinstance(call, dict):
        raise invalid(at, "must be an object")
    name = _string(call, "name", at)
    args = call.get("args", {})
    if not isinstance(args, dict):
        raise invalid(f"{at}.args", "must be an object")
    call_id = call["id"] if isinstance(call.get("id"), str) and call["id"] else new_id("call_")
    pending.setdefault(name, []).append(call_id)
    return tool_call(call_id, name, orjson.dumps(args).decode())


def _data_url(data: Any, at: str) -> str:
    if isinstance(data, dict):
        mime, payload = data.get("mimeType"), data.get("data")
        if isinstance(mime, str) and mime.startswith("image/") and isinstance(payload, str):
            return f"data:{mime};base64,{payload}"
    raise invalid(at, "only inline images can be sent to a Chat Completions model")


def _string(obj: dict[str, Any], key: str, at: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise invalid(f"{at}.{key}", "must be a string")
    return value


def _tools(tools: Any) -> list[dict[str, Any]]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise invalid("tools", "must be a list")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid(f"tools[{i}]", "must be an object")
        declarations = tool.get("functionDeclarations")
        if declarations is None:
            continue  # Google's own tools (search, code execution, URL context) run on Google's side
        if not isinstance(declarations, list):
            raise invalid(f"tools[{i}].functionDeclarations", "must be a list")
        for k, declaration in enumerate(declarations):
            at = f"tools[{i}].functionDeclarations[{k}]"
            if not isinstance(declaration, dict):
                raise invalid(at, "must be an object")
            schema = declaration.get("parametersJsonSchema")
            if schema is None and declaration.get("parameters") is not None:
                schema = json_schema(declaration["parameters"])
            out.append(function_tool(_string(declaration, "name", at), declaration.get("description"), schema))
    return out


def json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-style Schema as JSON Schema: its type names are upper case (`OBJECT`,
    `STRING`); everything else is the same vocabulary."""
    if isinstance(schema, dict):
        return {
            key: value.lower() if key == "type" and isinstance(value, str) else json_schema(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [json_schema(value) for value in schema]
    return schema


def _tool_choice(config: Any, chat: dict[str, Any]) -> None:
    calling = config.get("functionCallingConfig") if isinstance(config, dict) else None
    if not isinstance(calling, dict):
        return
    mode = calling.get("mode", "AUTO")
    if mode not in _FINISH_TOOL_CHOICE:
        raise invalid("toolConfig.functionCallingConfig.mode", f"'{mode}' has no Chat Completions equivalent")
    names = calling.get("allowedFunctionNames")
    if mode == "ANY" and isinstance(names, list) and len(names) == 1 and isinstance(names[0], str):
        chat["tool_choice"] = {"type": "function", "function": {"name": names[0]}}
    else:
        chat["tool_choice"] = _FINISH_TOOL_CHOICE[mode]


def _generation(config: Any, chat: dict[str, Any]) -> None:
    if not isinstance(config, dict):
        return
    for ours, theirs in (
        ("temperature", "temperature"),
        ("topP", "top_p"),
        ("topK", "top_k"),
        ("seed", "seed"),
        ("presencePenalty", "presence_penalty"),
        ("frequencyPenalty", "frequency_penalty"),
    ):
        value = config.get(ours)
        if isinstance(value, int | float) and not isinstance(value, bool):
            chat[theirs] = value
    if isinstance(config.get("maxOutputTokens"), int):
        chat["max_tokens"] = config["maxOutputTokens"]
    stop = config.get("stopSequences")
    if isinstance(stop, list) and stop:
        chat["stop"] = stop
    count = config.get("candidateCount", 1)
    if count != 1:
        raise invalid("generationConfig.candidateCount", "a Chat Completions model is asked for one candidate only")
    schema = config.get("responseJsonSchema")
    if schema is None and config.get("responseSchema") is not None:
        schema = json_schema(config["responseSchema"])
    if isinstance(schema, dict):
        chat["response_format"] = {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    elif config.get("responseMimeType") == "application/json":
        chat["response_format"] = {"type": "json_object"}
