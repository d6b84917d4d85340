"""Streamed restoration of the autocomplete APIs beside Chat Completions, interleaved in one process.

The same ~7 MB of model text (20-40 character deltas citing placeholders of a 50-entry map, built
by bench/mask_bench.py) is restored as a Chat stream, a legacy completions stream (`choices[].text`,
CompletionsGrammar) and a FIM stream (Chat-shaped chunks, ChatGrammar); the restored text is
checked first. Rounds alternate the three, timed in CPU time (time.process_time, not wall clock:
the machine is shared); the median of the rounds is reported.

    .venv/bin/python bench/autocomplete_restore_ab.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # egress and tests.support
sys.path.insert(0, str(BENCH))  # mask_bench's stream builders

import mask_bench as mb  # noqa: E402

from egress.core.exchange import Api  # noqa: E402
from tests.support.masking import PLACEHOLDERS  # noqa: E402

CASES = (Api.OPENAI_CHAT, Api.OPENAI_COMPLETIONS, Api.FIM_COMPLETIONS)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    values = mb.secret_values(50, random.Random(7))
    stream_map = {PLACEHOLDERS.make(v, rule.upper().replace("-", "_")): v for v, rule in values.items()}
    pieces, expected = mb.stream_text(stream_map, mb.code_lines(), 1_000_000)
    streams = {api: mb.api_stream(api, pieces)[0] for api in CASES}
    for api, events in streams.items():
        assert mb.restored_text(api, mb.feed_all(api, events, stream_map)) == expected, api
    cpu: dict[Api, list[float]] = {api: [] for api in CASES}
    for _ in range(args.rounds):
        for api, events in streams.items():
            start = time.process_time()
            mb.feed_all(api, events, stream_map)
            cpu[api].append(time.process_time() - start)
    print("| api | events | sse_mb | cpu_s (median) | restore_mb_s | us_per_event |\n|---|---|---|---|---|---|")
    for api, times in cpu.items():
        size, n, median = sum(map(len, streams[api])), len(streams[api]), statistics.median(times)
        print(
            f"| {api.value} | {n} | {size / 1e6:.2f} | {median:.3f} | {size / 1e6 / median:.0f} | {median / n * 1e6:.2f} |"
        )


if __name__ == "__main__":
    main()
