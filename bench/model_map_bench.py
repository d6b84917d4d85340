"""Model mapping on the request path, side by side with the path without it.

Per request, in one process, A and B alternating in every round (CPU time, `time.process_time_ns`,
so other processes on a shared machine do not count):

- A, no mapping: the lookup on an endpoint without `model_map` (it answers the client's name) and
  nothing else: the body leaves as it is and no echo is rewritten;
- B, mapping: the lookup through an exact key, the request's `model` literal rewritten in place in
  the ~32 KB Claude Code body (bench/body.py, `model` near the start as Claude Code writes it),
  and the client's name put back in the answer: a whole Messages answer (non-stream), or each of
  the 20 events of a Messages stream (stream: only `message_start` carries the model);
- C, glob: the lookup falling through three globs to the fourth (no exact key);
- D, worst case: a 1 MB Chat body whose `model` comes after the messages (the order the OpenAI
  Python SDK writes), rewritten in place (the offload stage moves bodies this large off the loop).

Each round times a batch of `--ops` requests per variant; the per-request time of a round is the
batch's CPU time / ops. Reported: the median (p50) over rounds of each variant and of B − A.

    .venv/bin/python bench/model_map_bench.py [--rounds 201] [--ops 300] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.body import MODEL, build  # noqa: E402
from egress.core.endpoint import Credentials, Endpoint  # noqa: E402
from egress.core.exchange import Api  # noqa: E402
from egress.mask.model_field import ModelEcho, with_model  # noqa: E402
from egress.route.model_map import upstream_model  # noqa: E402
from egress.wire.apis import APIS  # noqa: E402
from egress.wire.sse import SseDecoder  # noqa: E402
from tests.support.model_sim import messages_answer, messages_stream  # noqa: E402

MAPPED = "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"


def endpoint(model_map: dict[str, str]) -> Endpoint:
    return Endpoint(
        name="e",
        api="anthropic",
        base_url="https://example.org",
        models=("claude-*",),
        credentials=Credentials(env="K", api_key="k"),
        operator="op",
        jurisdiction="EU",
        region="eu-central-1",
        retention_days=0,
        trains_on_api_data=False,
        dpa=True,
        model_map=model_map,
    )


def per_op_ns(fn: Callable[[], object], ops: int) -> float:
    t0 = time.process_time_ns()
    for _ in range(ops):
        fn()
    return (time.process_time_ns() - t0) / ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=201)
    parser.add_argument("--ops", type=int, default=300)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    body = build(stream=False)
    plain = endpoint({})
    exact = endpoint({MODEL: MAPPED})
    globs = endpoint({"claude-opus-*": "o", "claude-haiku-*": "h", "gpt-*": "g", "claude-sonnet-*": MAPPED})
    spec = APIS[Api.ANTHROPIC_MESSAGES].model_echo
    answer = json.dumps(messages_answer(MAPPED, "x" * 2000)).encode()
    # Twenty events: message_start, block start, ping, 14 deltas, block stop, message_delta, stop.
    stream = messages_stream(MAPPED, "y")
    events = SseDecoder().feed(stream)
    delta = next(e for e in events if b"content_block_delta" in e)
    events = events[:3] + [delta] * 14 + events[4:]
    assert len(events) == 20, len(events)
    # The worst case: a 1 MB Chat body, `model` after the messages.
    big = (
        b'{"messages":['
        + b",".join(b'{"role":"user","content":"' + (b'lorem ipsum \\"quoted\\" ' * 40) + b'"}' for _ in range(1100))
        + b'],"model":"gpt-5","stream":true}'
    )

    def a() -> object:
        model = upstream_model(plain, MODEL)
        return model != MODEL  # the router's "did mapping change it" test; nothing else runs

    def b_whole() -> object:
        model = upstream_model(exact, MODEL)
        sent = with_model(body, model)
        echo = ModelEcho(MODEL, spec.body, spec.event)
        return sent, echo.body(answer)

    def b_stream() -> object:
        model = upstream_model(exact, MODEL)
        sent = with_model(body, model)
        echo = ModelEcho(MODEL, spec.body, spec.event)
        return sent, [echo.event(e) for e in events]

    def c_glob() -> object:
        return upstream_model(globs, "claude-sonnet-4-5")

    def d_big() -> object:
        return with_model(big, "gpt-5-2025-08-07-eu")

    variants: dict[str, Callable[[], object]] = {
        "a_no_mapping": a,
        "b_mapping_whole": b_whole,
        "b_mapping_stream": b_stream,
        "c_lookup_glob": c_glob,
    }
    samples: dict[str, list[float]] = {k: [] for k in [*variants, "d_1mb_model_last"]}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            samples[name].append(per_op_ns(fn, args.ops))
        samples["d_1mb_model_last"].append(per_op_ns(d_big, max(1, args.ops // 100)))
    p50 = {k: statistics.median(v) / 1000 for k, v in samples.items()}
    result = {
        "bench": "model_map",
        "rounds": args.rounds,
        "ops": args.ops,
        "body_bytes": len(body),
        "big_body_bytes": len(big),
        "p50_us": {k: round(v, 2) for k, v in p50.items()},
        "added_p50_us": {
            "whole": round(p50["b_mapping_whole"] - p50["a_no_mapping"], 2),
            "stream": round(p50["b_mapping_stream"] - p50["a_no_mapping"], 2),
        },
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
