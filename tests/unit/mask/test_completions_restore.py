"""Autocomplete masking and restoration: the prompt and the suffix are masked in place; the
answer's text (legacy `choices[].text`, FIM's Chat-shaped `delta.content`) is restored under any
split of the text into chunks and of the wire into network reads, with no placeholder (whole or in
part) reaching the client and every other byte as the provider sent it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.core.exchange import Api
from egress.mask.restore import Restorer
from tests.support.masking import events, mask_request, run_stream, sse
from tests.unit.mask.test_stream_restore import MAP, restore_plain, split, texts

VALUES = {v: "secret" for v in MAP.values()}


@pytest.mark.parametrize("api", [Api.OPENAI_COMPLETIONS, Api.FIM_COMPLETIONS])
def test_prompt_and_suffix_are_masked_and_nothing_else_changes(api):
    doc = {
        "model": "codestral-latest",
        "prompt": "aws = '" + "AKIAIOSFODNN7EXAMPLE" + "'\n",
        "suffix": "\nmail('jos\u00e9@example.org')",
        "max_tokens": 16,
        "stop": ["\n\n"],
        "stream": True,
    }
    masked = mask_request(api, json.dumps(doc).encode(), VALUES)
    out = json.loads(masked.body)
    assert "AKIAIOSFODNN7EXAMPLE" not in masked.body.decode() and "jos\u00e9@example.org" not in out["suffix"]
    assert {k: v for k, v in out.items() if k not in ("prompt", "suffix")} == {
        k: v for k, v in doc.items() if k not in ("prompt", "suffix")
    }
    restored = Restorer().body(api, masked.placeholders, masked.body)
    assert json.loads(restored) == doc


def test_each_prompt_of_a_list_is_masked():
    doc = {"model": "m", "prompt": ["a AKIAIOSFODNN7EXAMPLE", "b", "c jos\u00e9@example.org"]}
    masked = mask_request(Api.OPENAI_COMPLETIONS, json.dumps(doc).encode(), VALUES)
    prompts = json.loads(masked.body)["prompt"]
    assert prompts[1] == "b" and all(p.count("EGX_") == 1 for p in (prompts[0], prompts[2]))


def legacy_wire(text: str, other: str, cuts: list[int], together: bool = False) -> bytes:
    """Two choices interleaved (n=2), the second with its own text; the finish chunk empty.
    `together`: both choices in one chunk, each with logprobs (tokens are not restored)."""
    base = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "gpt-3.5-turbo-instruct"}
    out = []
    first, second = split(text, cuts), split(other, cuts)
    width = max(len(first), len(second))
    for a, b in zip(first + [""] * (width - len(first)), second + [""] * (width - len(second)), strict=True):
        choices = []
        for index, part in ((0, a), (1, b)):
            logprobs = {"tokens": [part], "token_logprobs": [-0.5], "top_logprobs": None, "text_offset": [0]}
            choices.append(
                {"text": part, "index": index, "logprobs": logprobs if together else None, "finish_reason": None}
            )
        for group in [choices] if together else [[c] for c in choices]:
            out.append(sse(None, {**base, "choices": group}))
    for index in (0, 1):
        out.append(
            sse(None, {**base, "choices": [{"text": "", "index": index, "logprobs": None, "finish_reason": "stop"}]})
        )
    out.append(sse(None, {**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 9}}))
    out.append(sse(None, "[DONE]"))
    return b"".join(out)


@settings(max_examples=200, deadline=None)
@given(
    texts, texts, st.lists(st.integers(0, 400), max_size=8), st.lists(st.integers(0, 6000), max_size=30), st.booleans()
)
def test_legacy_stream_restores_exactly_under_any_split(text, other, cuts, byte_cuts, together):
    wire = legacy_wire(text, other, cuts, together)
    restored = run_stream(Restorer().stream(Api.OPENAI_COMPLETIONS, MAP), wire, byte_cuts)
    assert restored == run_stream(Restorer().stream(Api.OPENAI_COMPLETIONS, MAP), wire, [])
    evs = [d for _, d in events(restored)]
    assert evs[-1] == "[DONE]"
    per_choice = {0: "", 1: ""}
    for doc in evs[:-1]:
        for choice in doc["choices"]:
            per_choice[choice["index"]] += choice["text"]
    assert per_choice == {0: restore_plain(text), 1: restore_plain(other)}
    # Every held tail was released before its choice's finish chunk.
    for index in (0, 1):
        finish = next(
            i
            for i, d in enumerate(evs[:-1])
            if d["choices"] and d["choices"][0]["index"] == index and d["choices"][0]["finish_reason"]
        )
        later = [c for d in evs[finish + 1 : -1] for c in d["choices"] if c["index"] == index]
        assert all(c["text"] == "" for c in later)


def test_a_placeholder_in_the_finish_chunk_is_restored_at_once():
    placeholder, value = next(iter(MAP.items()))
    base = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m"}
    wire = sse(None, {**base, "choices": [{"text": "x=", "index": 0, "logprobs": None, "finish_reason": None}]})
    wire += sse(
        None, {**base, "choices": [{"text": placeholder, "index": 0, "logprobs": None, "finish_reason": "stop"}]}
    )
    wire += sse(None, "[DONE]")
    evs = [d for _, d in events(run_stream(Restorer().stream(Api.OPENAI_COMPLETIONS, MAP), wire, []))]
    assert "".join(d["choices"][0]["text"] for d in evs[:-1]) == "x=" + value


def test_a_stream_cut_inside_a_placeholder_never_shows_its_fragment():
    placeholder = next(iter(MAP))
    base = {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m"}
    wire = sse(
        None,
        {**base, "choices": [{"text": "k=" + placeholder[:12], "index": 0, "logprobs": None, "finish_reason": None}]},
    )
    restorer = Restorer().stream(Api.OPENAI_COMPLETIONS, MAP)
    out = run_stream(restorer, wire, [])
    assert placeholder[:12] not in out.decode() and b'"k="' in out
    assert restorer.dropped == 12


def fim_wire(text: str, cuts: list[int]) -> bytes:
    base = {"id": "fim-1", "object": "chat.completion.chunk", "created": 1, "model": "codestral-latest"}
    out = [
        sse(
            None,
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        )
    ]
    for part in split(text, cuts):
        out.append(sse(None, {**base, "choices": [{"index": 0, "delta": {"content": part}, "finish_reason": None}]}))
    out.append(
        sse(
            None,
            {
                **base,
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
            },
        )
    )
    out.append(sse(None, "[DONE]"))
    return b"".join(out)


@settings(max_examples=200, deadline=None)
@given(texts, st.lists(st.integers(0, 400), max_size=8), st.lists(st.integers(0, 5000), max_size=30))
def test_fim_stream_restores_exactly_under_any_split(text, cuts, byte_cuts):
    wire = fim_wire(text, cuts)
    restored = run_stream(Restorer().stream(Api.FIM_COMPLETIONS, MAP), wire, byte_cuts)
    assert restored == run_stream(Restorer().stream(Api.FIM_COMPLETIONS, MAP), wire, [])
    evs = [d for _, d in events(restored)]
    assert evs[-1] == "[DONE]"
    assert "".join(c["delta"].get("content", "") for d in evs[:-1] for c in d["choices"]) == restore_plain(text)


@pytest.mark.parametrize("api", [Api.OPENAI_COMPLETIONS, Api.FIM_COMPLETIONS])
def test_whole_answers_restore_their_text(api):
    placeholder, value = next(iter(MAP.items()))
    if api is Api.OPENAI_COMPLETIONS:
        doc = {"object": "text_completion", "choices": [{"text": f"k = {placeholder}", "index": 0}]}
    else:
        doc = {"object": "chat.completion", "choices": [{"index": 0, "message": {"content": f"k = {placeholder}"}}]}
    restored = json.loads(Restorer().body(api, MAP, json.dumps(doc).encode()))
    choice = restored["choices"][0]
    assert (choice.get("text") or choice["message"]["content"]) == f"k = {value}"
