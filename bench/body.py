"""A realistic ~32 KB Claude Code request body for the benchmarks.

Shaped like what Claude Code sends to `POST /v1/messages` in the middle of a session (see
/work/shared/reference/protocols.md §1.5): an attribution block and two cached system blocks,
a tool list with JSON schemas, a first user turn carrying CLAUDE.md inside `<system-reminder>`,
then assistant turns with a signed `thinking` block and `tool_use` blocks, and user turns with
`tool_result`s holding line-numbered file reads ("     1→import os"), grep output and bash
output. The last user block carries `cache_control`, `metadata.user_id` is the legacy form, and
`stream` is the last key (as the TS SDK writes it). The newest tool result starts with a marker
whose digits a load generator can change per request (see FRESH_MARK) to make that turn new.

Everything is synthetic and deterministic: the same bytes on every run. There are no secrets in
it (no key-shaped strings, no credentials), so it measures the clean path: inspect everything,
find nothing, mask nothing, forward the body byte for byte.

    python bench/body.py            # print size and a summary
    python bench/body.py --write F  # write the non-stream body to F (and F.stream for stream)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

TARGET_BYTES = 32 * 1024
MODEL = "claude-sonnet-4-5-20250929"
SESSION_ID = "7f3c1e52-9a4b-4d1e-8c2f-5b6a7d8e9f01"

# Request headers a Claude Code client sends (values made up; nothing secret). The gateway key
# header is added by the runner; the client's own provider key is a placeholder that egress drops.
CLAUDE_CODE_HEADERS: list[tuple[str, str]] = [
    ("content-type", "application/json"),
    ("accept", "application/json"),
    ("anthropic-version", "2023-06-01"),
    ("anthropic-beta", "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"),
    ("anthropic-dangerous-direct-browser-access", "true"),
    ("user-agent", "claude-cli/2.1.257 (external, cli)"),
    ("x-app", "cli"),
    ("x-claude-code-session-id", SESSION_ID),
    ("x-stainless-lang", "js"),
    ("x-stainless-os", "Linux"),
    ("x-stainless-arch", "x64"),
    ("x-stainless-runtime", "node"),
    ("x-stainless-runtime-version", "v22.11.0"),
    ("x-stainless-package-version", "0.60.0"),
    ("x-stainless-retry-count", "0"),
    ("x-stainless-timeout", "600"),
    ("x-api-key", "bench-client-placeholder"),
]

_SYSTEM_PROMPT = """You are an interactive CLI tool that helps users with software engineering tasks. \
Use the instructions below and the tools available to you to assist the user.

# Tone and style
You should be concise, direct, and to the point. When you run a non-trivial bash command, you \
should explain what the command does and why you are running it. Output text to communicate with \
the user; all text you output outside of tool use is displayed to the user.

# Following conventions
When making changes to files, first understand the file's code conventions. Mimic code style, use \
existing libraries and utilities, and follow existing patterns. Never assume that a given library \
is available, even if it is well known. When you create a new component, first look at existing \
components to see how they're written.

# Doing tasks
The user will primarily request you perform software engineering tasks. This includes solving \
bugs, adding new functionality, refactoring code, explaining code, and more. Use the TodoWrite \
tool to plan the task if required. Use the available search tools to understand the codebase and \
the user's query. Implement the solution using all tools available to you. Verify the solution if \
possible with tests. NEVER assume specific test framework or test script.

# Tool usage policy
When doing file search, prefer to use the Task tool in order to reduce context usage. You have \
the capability to call multiple tools in a single response. When multiple independent pieces of \
information are requested, batch your tool calls together for optimal performance.

<env>
Working directory: /home/dev/src/inventory-service
Is directory a git repo: Yes
Platform: linux
OS Version: Linux 6.8.0-45-generic
Today's date: 2025-11-04
</env>
You are powered by the model named Sonnet 4.5. The exact model ID is claude-sonnet-4-5-20250929.

gitStatus: This is the git status at the start of the conversation.
Current branch: fix/retry-backoff

Main branch (you will usually use this for PRs): main

Status:
M src/inventory/http/retry.py
M tests/test_retry.py

Recent commits:
4e1d2c9 Add jitter to reconnect loop
a83f0b1 Move settings loading into config module
1c9d7e4 Pin aiohttp and orjson
"""

_CLAUDE_MD = """<system-reminder>
As you answer the user's questions, you can use the following context:
# claudeMd
Codebase and user instructions are shown below. Be sure to adhere to these instructions.

Contents of /home/dev/src/inventory-service/CLAUDE.md (project instructions, checked into the codebase):

# inventory-service
- Python 3.12, asyncio everywhere; no blocking calls on the event loop.
- Run tests with `make test` (pytest, pytest-asyncio). Lint with `make lint` (ruff).
- HTTP clients live in src/inventory/http/. Retries go through `retry.call_with_retry`.
- Never log request bodies. Settings come from src/inventory/config.py only.
- Keep functions short; prefer dataclasses with slots for value objects.
</system-reminder>"""


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "input_schema": {
            "type": "object",
            "properties": properties,
            "required": required,
            "additionalProperties": False,
            "$schema": "http://json-schema.org/draft-07/schema#",
        },
    }


def _tools() -> list[dict[str, Any]]:
    s = {"type": "string"}
    n = {"type": "number"}
    b = {"type": "boolean"}
    return [
        _tool(
            "Bash",
            "Executes a given bash command in a persistent shell session with optional timeout, ensuring "
            "proper handling and security measures. Before executing the command, verify the parent "
            "directory exists. Always quote file paths that contain spaces.",
            {
                "command": {**s, "description": "The command to execute"},
                "timeout": {**n, "description": "Optional timeout in milliseconds (max 600000)"},
                "description": {**s, "description": "Clear, concise description of what this command does"},
                "run_in_background": {**b, "description": "Set to true to run this command in the background"},
            },
            ["command"],
        ),
        _tool(
            "Glob",
            "Fast file pattern matching tool that works with any codebase size. Supports glob patterns "
            'like "**/*.js" or "src/**/*.ts". Returns matching file paths sorted by modification time.',
            {
                "pattern": {**s, "description": "The glob pattern to match files against"},
                "path": {**s, "description": "The directory to search in"},
            },
            ["pattern"],
        ),
        _tool(
            "Grep",
            "A powerful search tool built on ripgrep. Supports full regex syntax, filtering files with "
            "the glob parameter or the type parameter, and output modes content, files_with_matches, count.",
            {
                "pattern": {**s, "description": "The regular expression pattern to search for"},
                "path": {**s, "description": "File or directory to search in"},
                "glob": {**s, "description": "Glob pattern to filter files"},
                "output_mode": {"type": "string", "enum": ["content", "files_with_matches", "count"]},
                "-n": {**b, "description": "Show line numbers in output"},
                "-i": {**b, "description": "Case insensitive search"},
            },
            ["pattern"],
        ),
        _tool(
            "Read",
            "Reads a file from the local filesystem. By default, it reads up to 2000 lines starting from "
            "the beginning of the file. Results are returned using cat -n format, with line numbers "
            "starting at 1.",
            {
                "file_path": {**s, "description": "The absolute path to the file to read"},
                "offset": {**n, "description": "The line number to start reading from"},
                "limit": {**n, "description": "The number of lines to read"},
            },
            ["file_path"],
        ),
        _tool(
            "Edit",
            "Performs exact string replacements in files. You must use your Read tool at least once in the "
            "conversation before editing. The edit will FAIL if old_string is not unique in the file.",
            {
                "file_path": {**s, "description": "The absolute path to the file to modify"},
                "old_string": {**s, "description": "The text to replace"},
                "new_string": {**s, "description": "The text to replace it with"},
                "replace_all": {**b, "default": False, "description": "Replace all occurrences"},
            },
            ["file_path", "old_string", "new_string"],
        ),
        _tool(
            "Write",
            "Writes a file to the local filesystem. This tool will overwrite the existing file if there is "
            "one at the provided path.",
            {
                "file_path": {**s, "description": "The absolute path to the file to write"},
                "content": {**s, "description": "The content to write to the file"},
            },
            ["file_path", "content"],
        ),
        _tool(
            "TodoWrite",
            "Use this tool to create and manage a structured task list for your current coding session.",
            {
                "todos": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "content": {"type": "string", "minLength": 1},
                            "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                            "activeForm": {"type": "string", "minLength": 1},
                        },
                        "required": ["content", "status", "activeForm"],
                    },
                }
            },
            ["todos"],
        ),
    ]


_RETRY_PY = '''"""Retries for outbound HTTP calls: exponential backoff with full jitter."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import aiohttp

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    base_delay_s: float = 0.2
    max_delay_s: float = 10.0
    multiplier: float = 2.0

    def delay(self, attempt: int) -> float:
        """Full jitter: a uniform delay between 0 and the capped exponential step."""
        step = min(self.max_delay_s, self.base_delay_s * self.multiplier ** attempt)
        return random.uniform(0.0, step)


class RetryError(Exception):
    def __init__(self, attempts: int, last: BaseException | None) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last!r}")
        self.attempts = attempts
        self.last = last


def _retry_after(resp: aiohttp.ClientResponse) -> float | None:
    value = resp.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


async def call_with_retry(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy = RetryPolicy(),
    *,
    retry_on: tuple[type[BaseException], ...] = (aiohttp.ClientConnectionError, asyncio.TimeoutError),
) -> T:
    last: BaseException | None = None
    for attempt in range(policy.attempts):
        try:
            return await fn()
        except aiohttp.ClientResponseError as exc:
            if exc.status not in RETRYABLE_STATUS:
                raise
            last = exc
        except retry_on as exc:
            last = exc
        delay = policy.delay(attempt)
        log.warning("attempt %d failed (%s); retrying in %.2fs", attempt + 1, type(last).__name__, delay)
        await asyncio.sleep(delay)
    raise RetryError(policy.attempts, last)


async def fetch_json(session: aiohttp.ClientSession, url: str, policy: RetryPolicy = RetryPolicy()) -> dict:
    async def once() -> dict:
        async with session.get(url) as resp:
            if resp.status in RETRYABLE_STATUS:
                hint = _retry_after(resp)
                if hint is not None:
                    await asyncio.sleep(min(hint, policy.max_delay_s))
                resp.raise_for_status()
            resp.raise_for_status()
            return await resp.json()

    return await call_with_retry(once, policy)
'''

_TEST_RETRY_PY = """import asyncio

import aiohttp
import pytest

from inventory.http.retry import RetryError, RetryPolicy, call_with_retry


class Flaky:
    def __init__(self, failures: int, exc: BaseException) -> None:
        self.failures = failures
        self.exc = exc
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return "ok"


@pytest.fixture
def fast() -> RetryPolicy:
    return RetryPolicy(attempts=4, base_delay_s=0.0, max_delay_s=0.0)


async def test_succeeds_after_transient_errors(fast: RetryPolicy) -> None:
    fn = Flaky(2, aiohttp.ClientConnectionError("reset"))
    assert await call_with_retry(fn, fast) == "ok"
    assert fn.calls == 3


async def test_gives_up(fast: RetryPolicy) -> None:
    fn = Flaky(10, asyncio.TimeoutError())
    with pytest.raises(RetryError) as info:
        await call_with_retry(fn, fast)
    assert info.value.attempts == 4


def test_delay_is_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=3.0)
    assert all(0.0 <= policy.delay(n) <= 3.0 for n in range(20))
"""

_CONFIG_PY = '''"""Settings, read once from the environment at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


@dataclass(frozen=True, slots=True)
class HttpSettings:
    connect_timeout_s: float = field(default_factory=lambda: _env_float("INVENTORY_CONNECT_TIMEOUT", 5.0))
    read_timeout_s: float = field(default_factory=lambda: _env_float("INVENTORY_READ_TIMEOUT", 30.0))
    pool_size: int = field(default_factory=lambda: _env_int("INVENTORY_POOL_SIZE", 64))


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: Path(os.environ.get("INVENTORY_DATA", "/var/lib/inventory")))
    warehouse_url: str = field(default_factory=lambda: os.environ.get("WAREHOUSE_URL", "http://warehouse.internal:8000"))
    http: HttpSettings = field(default_factory=HttpSettings)
    page_size: int = field(default_factory=lambda: _env_int("INVENTORY_PAGE_SIZE", 200))
'''


# The newest tool result (the file read of the last turn) starts with this marker and a 10-digit
# number. Load generators overwrite the digits with a per-request counter ("fresh" mode), so that
# text is new on every request, as the newest turn of a real session is, while everything before it
# is the same resent history. The body's size does not change.
FRESH_MARK = "bench-turn-"
FRESH_DIGITS = 10


def fresh_split(body: bytes) -> tuple[bytes, bytes]:
    """(everything up to and including the marker, everything after the digits)."""
    mark = FRESH_MARK.encode()
    at = body.index(mark) + len(mark)
    return body[:at], body[at + FRESH_DIGITS :]


def numbered(text: str, first: int = 1) -> str:
    """Claude Code's Read output: a 6-wide right-aligned line number, then U+2192, then the line."""
    return "\n".join(f"{i:>6}\u2192{line}" for i, line in enumerate(text.splitlines(), start=first))


def _filler_lines(n: int) -> str:
    """More of a plausible module, to bring the body to the target size (deterministic)."""
    out = []
    for i in range(n):
        k = i % 6
        if k == 0:
            out.append(f"async def sync_warehouse_page_{i}(session: aiohttp.ClientSession, page: int) -> list[dict]:")
        elif k == 1:
            out.append(f'    url = f"{{settings.warehouse_url}}/v2/items?page={{page}}&size=200&shard={i % 7}"')
        elif k == 2:
            out.append("    doc = await fetch_json(session, url, RetryPolicy(attempts=3))")
        elif k == 3:
            out.append(
                f'    items = [normalise(item) for item in doc.get("items", []) if item.get("sku")]  # batch {i}'
            )
        elif k == 4:
            out.append(f'    log.debug("page %d: %d items from shard %d", page, len(items), {i % 7})')
        else:
            out.append("    return items\n")
    return "\n".join(out)


def secrets_env(n: int) -> str:
    """A `.env` file read (Claude Code's Read format) holding `n` fake, detectable secrets."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    lines = ["APP_ENV=production", "LOG_LEVEL=info"]
    for i in range(n):
        tail = "".join(alphabet[(i * 7 + k * 3) % 32] for k in range(16))
        lines.append(f"AWS_ACCESS_KEY_ID_{i}=AKIA{tail}" if i % 2 == 0 else f"STRIPE_KEY_{i}=sk_live_{tail}Zq8Lm2Xv")
    return numbered("\n".join(lines))


def _document(filler_lines: int, stream: bool, secrets: int = 0) -> dict[str, Any]:
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.257.4f1; cc_entrypoint=cli;"},
        {
            "type": "text",
            "text": "You are Claude Code, Anthropic's official CLI for Claude.",
            "cache_control": {"type": "ephemeral"},
        },
        {"type": "text", "text": _SYSTEM_PROMPT, "cache_control": {"type": "ephemeral"}},
    ]
    grep_out = "\n".join(
        f"src/inventory/{path}:{line}:{text}"
        for path, line, text in [
            ("http/retry.py", 57, "async def call_with_retry("),
            ("http/retry.py", 81, "async def fetch_json(session: aiohttp.ClientSession, url: str, policy=...)"),
            ("sync/warehouse.py", 12, "from inventory.http.retry import RetryPolicy, fetch_json"),
            ("sync/warehouse.py", 40, "    doc = await fetch_json(session, url, RetryPolicy(attempts=3))"),
            ("sync/orders.py", 9, "from inventory.http.retry import call_with_retry"),
            ("sync/orders.py", 88, "        return await call_with_retry(lambda: self._post(batch))"),
        ]
    )
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": _CLAUDE_MD},
                {
                    "type": "text",
                    "text": "The retry helper ignores Retry-After on 429s and the backoff has no "
                    "upper bound in practice. Fix it and add a test.",
                },
                *([{"type": "text", "text": "Here is .env:\n" + secrets_env(secrets)}] if secrets else []),
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "thinking",
                    "thinking": "I should read the retry module and its tests first, then look for call sites.",
                    "signature": "EqQBCkgIBxABGAIqQFv3b9kq1Z" + "Qx7" * 40 + "GgwQ1bench0000000000",
                },
                {"type": "text", "text": "I'll start by reading the retry module and its tests."},
                {
                    "type": "tool_use",
                    "id": "toolu_01AbCdEfGhIjKlMnOpQrStUv",
                    "name": "Read",
                    "input": {"file_path": "/home/dev/src/inventory-service/src/inventory/http/retry.py"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_01BcDeFgHiJkLmNoPqRsTuVw",
                    "name": "Read",
                    "input": {"file_path": "/home/dev/src/inventory-service/tests/test_retry.py"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01AbCdEfGhIjKlMnOpQrStUv",
                    "content": numbered(_RETRY_PY),
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01BcDeFgHiJkLmNoPqRsTuVw",
                    "content": numbered(_TEST_RETRY_PY),
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Now let me find the call sites and the settings module."},
                {
                    "type": "tool_use",
                    "id": "toolu_01CdEfGhIjKlMnOpQrStUvWx",
                    "name": "Grep",
                    "input": {
                        "pattern": "call_with_retry|fetch_json",
                        "path": "src",
                        "output_mode": "content",
                        "-n": True,
                    },
                },
                {
                    "type": "tool_use",
                    "id": "toolu_01DeFgHiJkLmNoPqRsTuVwXy",
                    "name": "Read",
                    "input": {"file_path": "/home/dev/src/inventory-service/src/inventory/config.py"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01CdEfGhIjKlMnOpQrStUvWx", "content": grep_out},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01DeFgHiJkLmNoPqRsTuVwXy",
                    "content": numbered(_CONFIG_PY),
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_01EfGhIjKlMnOpQrStUvWxYz",
                    "name": "Edit",
                    "input": {
                        "file_path": "/home/dev/src/inventory-service/src/inventory/http/retry.py",
                        "old_string": "            if exc.status not in RETRYABLE_STATUS:\n                raise\n",
                        "new_string": "            if exc.status not in RETRYABLE_STATUS:\n                raise\n"
                        "            hint = _hint_from(exc)\n",
                    },
                },
                {
                    "type": "tool_use",
                    "id": "toolu_01FgHiJkLmNoPqRsTuVwXyZa",
                    "name": "Bash",
                    "input": {
                        "command": "cd /home/dev/src/inventory-service && python -m pytest tests/test_retry.py -q",
                        "description": "Run the retry tests",
                    },
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01EfGhIjKlMnOpQrStUvWxYz",
                    "content": "The file /home/dev/src/inventory-service/src/inventory/http/retry.py has been updated. "
                    "Here's the result of running `cat -n` on a snippet of the edited file:\n"
                    + numbered("\n".join(_RETRY_PY.splitlines()[60:72]), first=61),
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01FgHiJkLmNoPqRsTuVwXyZa",
                    "content": "...                                                                       [100%]\n"
                    "3 passed in 0.21s",
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "text",
                    "text": "The tests pass. Let me check the warehouse sync, which calls fetch_json in a loop.",
                },
                {
                    "type": "tool_use",
                    "id": "toolu_01GhIjKlMnOpQrStUvWxYzAb",
                    "name": "Read",
                    "input": {"file_path": "/home/dev/src/inventory-service/src/inventory/sync/warehouse.py"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01GhIjKlMnOpQrStUvWxYzAb",
                    "content": numbered(
                        f"# {FRESH_MARK}{'0' * FRESH_DIGITS}: warehouse sync\n" + _filler_lines(filler_lines)
                    ),
                    "cache_control": {"type": "ephemeral"},
                },
            ],
        },
    ]
    return {
        "model": MODEL,
        "messages": messages,
        "temperature": 1,
        "system": system,
        "tools": _tools(),
        "metadata": {"user_id": "user_" + "5e0c" * 16 + "_account__session_" + SESSION_ID},
        "max_tokens": 32000,
        "stream": stream,
    }


def _encode(doc: dict[str, Any]) -> bytes:
    # Compact, raw UTF-8 (as JSON.stringify writes it).
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def build(stream: bool, target: int = TARGET_BYTES, secrets: int = 0) -> bytes:
    """The body, grown with file lines to just under `target` bytes (same size for both modes
    but for the one byte between `false` and `true`). With `secrets`, the first user turn also
    holds a `.env` file read with that many detectable secrets (the masking benchmark)."""
    lines = 0
    while lines < 10_000 and len(_encode(_document(lines + 1, False, secrets))) <= target:
        lines += 1
    return _encode(_document(lines, stream, secrets))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", type=Path, help="write the non-stream body here and the stream body to FILE.stream")
    args = ap.parse_args()
    plain, stream = build(False), build(True)
    if args.write:
        args.write.write_bytes(plain)
        args.write.with_name(args.write.name + ".stream").write_bytes(stream)
    doc = json.loads(plain)
    print(f"non-stream body: {len(plain)} bytes; stream body: {len(stream)} bytes")
    print(f"system blocks: {len(doc['system'])}, tools: {len(doc['tools'])}, messages: {len(doc['messages'])}")


if __name__ == "__main__":
    main()
