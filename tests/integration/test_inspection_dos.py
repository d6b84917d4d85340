"""DoS test: a secret-dense 30 MB prompt must not stall anyone else.

A real `egress serve` process (its own GIL, its own RSS) on the upstream simulator. First a
small request's time to first byte is measured alone; then the same small request runs again
and again while a 30 MB body holding a million GitLab tokens is sent three times in a row (by
curl, another process, so the test's own GIL cannot delay the small requests). The invariant
(issue #13): another request's inspection delays a request's first byte by at most 50 ms, so the
WORST small request while the dense bodies are in flight must be within 50 ms of the small
request's solo median, measured in the same run. The dense request itself gets the native
refusal (inspection_budget_exceeded, 413) or a masked forward, and an audit record either way;
the peak RSS of the gateway and of each of its worker processes stays bounded.

The gateway and this test (the small requests' client and the simulator) run 10 nice steps above
the machine's other work where that is permitted (root; their sessions' autogroups too), so what
is measured is egress's own stalls, not other processes' load on a shared machine; the gateway's
worker processes step back down by as much (gateway/worker_pool.py), so inside egress the order
is unchanged. One rerun is allowed: even so, a stall outside egress can take a core from the
gateway for more than 50 ms. The design this guards against (large bodies parsed and masked on
threads of the gateway's own process, one GIL) exceeded 50 ms on every run measured (65-106 ms
worst delay), so it fails both runs; a rerun does not hide it. The data directory is on tmpfs
(`memory_dir`), so the disk's fsync latency under other work is not counted either.
"""

from __future__ import annotations

import base64
import gc
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from egress.config import default_cache_dir
from egress.gateway.auth import new_key
from egress.gateway.worker_pool import WORKER_NICENESS
from egress.store.open import open_store
from tests.support.faults import records
from tests.support.gateway import SIM_ENV, free_port, write_config
from tests.support.processes import cpu_ticks, worker_processes

BODY_BYTES = 30_000_000  # under the 32 MiB body limit with its JSON
ALLOWED_DELAY_S = 0.050
DENSE_SENDS = 3
MIN_SAMPLES = 100
PRIORITY_STEP = WORKER_NICENESS
HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}


def dense_text(size: int) -> str:
    """`glpat-` tokens (random, so each is a distinct secret), space-separated, ~`size` chars."""
    count = size // 27
    raw = base64.urlsafe_b64encode(os.urandom(15 * count)).decode()
    return " ".join("glpat-" + raw[i * 20 : i * 20 + 20] for i in range(count))


def message(text: str) -> bytes:
    return orjson.dumps(
        {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": text}]}
    )


def dense_body() -> bytes:
    """~1.07 million `glpat-` tokens in one user message."""
    body = message(dense_text(BODY_BYTES - 200))
    assert BODY_BYTES - 1000 < len(body) <= BODY_BYTES
    return body


SMALL = message("hello, how are you?")


def serve(tmp_path: Path, config: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, **SIM_ENV, "HOME": str(tmp_path), "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "egress", "serve", "--config", str(config), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    raise_priority(proc.pid)  # before it starts its worker processes, which inherit it
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "egress serve exited before it was ready"
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("egress serve did not become ready")


def nice_of(pid: int) -> tuple[int, int | None]:
    """The process's nice value and its scheduling autogroup's (None: no autogroups here)."""
    group: int | None = None
    try:
        # "/autogroup-85 nice 0"; empty or absent where the kernel keeps no autogroups
        words = Path(f"/proc/{pid}/autogroup").read_text().split()
        if len(words) == 3 and words[1] == "nice":
            group = int(words[2])
    except (OSError, ValueError):
        group = None
    return os.getpriority(os.PRIO_PROCESS, pid), group


def set_nice(pid: int, nice: tuple[int, int | None]) -> None:
    """Where permitted (root). With autogroups on, a nice value orders processes only within one
    session; the autogroup's orders the sessions."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, nice[0])
        if nice[1] is not None:
            Path(f"/proc/{pid}/autogroup").write_text(str(nice[1]))
    except OSError:
        pass


def raise_priority(pid: int) -> None:
    own, group = nice_of(pid)
    set_nice(pid, (own - PRIORITY_STEP, None if group is None else group - PRIORITY_STEP))


@contextmanager
def prioritised() -> Iterator[None]:
    """This process (the client and the simulator) raised like the gateway, then back."""
    before = nice_of(os.getpid())
    raise_priority(os.getpid())
    try:
        yield
    finally:
        set_nice(os.getpid(), before)


def ttfb(client: httpx.Client, url: str, key: str, body: bytes = SMALL) -> float:
    """Seconds from sending a request to its response's first byte (status and headers)."""
    started = time.perf_counter()
    with client.stream("POST", url + "/v1/messages", content=body, headers={**HEADERS, "x-egress-key": key}) as r:
        first = time.perf_counter() - started
        r.read()
    assert r.status_code == 200, r.text
    return first


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def send_with_curl(url: str, key: str, body_file: Path, answer_file: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            "curl", "-sS", "-o", str(answer_file), "-w", "%{http_code}", "--max-time", "300",
            "-H", f"x-egress-key: {key}",
            *[arg for name, value in HEADERS.items() for arg in ("-H", f"{name}: {value}")],
            "--data-binary", f"@{body_file}", url + "/v1/messages",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip


@dataclass
class Run:
    solo: list[float]
    contended: list[float]
    statuses: list[int]
    answers: list[bytes]

    @property
    def worst_delay_s(self) -> float:
        return max(self.contended) - statistics.median(self.solo)

    def line(self) -> str:
        solo, contended = sorted(self.solo), sorted(self.contended)
        return (
            f"solo TTFB median {statistics.median(solo) * 1000:.1f} ms (max {solo[-1] * 1000:.1f}); with the "
            f"dense bodies in flight median {statistics.median(contended) * 1000:.1f} ms, p90 "
            f"{contended[int(len(contended) * 0.9)] * 1000:.1f} ms, max {contended[-1] * 1000:.1f} ms over "
            f"{len(contended)} requests; worst delay {self.worst_delay_s * 1000:.1f} ms; dense answers {self.statuses}"
        )


@contextmanager
def no_collection_pauses() -> Iterator[None]:
    """This process's garbage collector off while it measures: a full collection of the test
    process's heap takes tens of ms, and the many contended samples would catch one where the
    30 solo samples do not. What is measured is the gateway (another process)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def measure(client: httpx.Client, url: str, key: str, body_file: Path, tmp_path: Path) -> Run:
    solo = [ttfb(client, url, key) for _ in range(30)]
    contended: list[float] = []
    statuses: list[int] = []
    answers: list[bytes] = []
    for n in range(DENSE_SENDS):
        answer_file = tmp_path / f"answer-{n}.json"
        sender = send_with_curl(url, key, body_file, answer_file)
        while sender.poll() is None:
            contended.append(ttfb(client, url, key))
        statuses.append(int(sender.stdout.read()))  # type: ignore[union-attr]
        answers.append(answer_file.read_bytes())
    return Run(solo, contended, statuses, answers)


@pytest.fixture
def memory_dir(tmp_path) -> Iterator[Path]:
    """The gateway's data directory in memory (tmpfs) where there is one: the write-ahead audit
    commit's fsync then costs nothing, so a slow disk (shared with other work) does not show as
    a delay; the same code runs."""
    if not Path("/dev/shm").is_dir():
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir="/dev/shm", prefix="egress-dos-") as path:
        yield Path(path)


def test_a_secret_dense_30_mb_body_delays_no_one(upstream, tmp_path, memory_dir):
    store_url = f"sqlite:///{memory_dir / 'data' / 'egress.db'}"
    config = write_config(memory_dir, upstream.url, store={"url": store_url}, server={"body_read_timeout_s": 60})
    seed = open_store(store_url)
    seed.migrate()
    secret, key = new_key("dos", None)
    seed.create_key(key)
    seed.close()
    body = dense_body()
    body_file = tmp_path / "dense.json"
    body_file.write_bytes(body)
    proc, url = serve(tmp_path, config)
    runs: list[Run] = []
    try:
        with prioritised(), httpx.Client(timeout=60) as client:
            for _ in range(5):  # warm: connections, the rule automata's first use
                ttfb(client, url, secret)
            warm_workers(url, secret, tmp_path)
            workers = worker_processes(proc.pid)
            rss_before = memory_kb(proc.pid, "VmRSS")
            worker_rss_before = {pid: memory_kb(pid, "VmRSS") for pid in workers}
            cpu_before = {pid: cpu_ticks(pid) for pid in workers}

            with no_collection_pauses():
                runs.append(measure(client, url, secret, body_file, tmp_path))
            print("\n" + runs[-1].line())
            if runs[-1].worst_delay_s > ALLOWED_DELAY_S:
                with no_collection_pauses():
                    runs.append(measure(client, url, secret, body_file, tmp_path))  # the one rerun (see above)
                print(runs[-1].line())
            peak_kb = memory_kb(proc.pid, "VmHWM")
            worker_peaks = {pid: memory_kb(pid, "VmHWM") for pid in workers}
            worker_cpu = {pid: cpu_ticks(pid) - cpu_before[pid] for pid in workers}
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)

    run = runs[-1]
    print(
        f"RSS gateway before {rss_before / 1024:.0f} MB, peak {peak_kb / 1024:.0f} MB; workers before "
        f"{[round(v / 1024) for v in worker_rss_before.values()]} MB, peak "
        f"{[round(v / 1024) for v in worker_peaks.values()]} MB; worker CPU ticks {list(worker_cpu.values())}"
    )
    assert len(run.contended) >= MIN_SAMPLES, "too few small requests overlapped the dense ones"
    # The dense bodies were inspected in the worker processes, not in the gateway's.
    assert workers and sum(worker_cpu.values()) > 0
    assert run.worst_delay_s <= ALLOWED_DELAY_S, run.line()

    # Peak RSS: the body is held a few times over (bytes, the copy sent to a worker, parsed text,
    # its UTF-8 for the matcher): a small multiple of its size, in the gateway and in a worker.
    # Work per finding would show (a million findings are gigabytes of objects).
    assert (peak_kb - rss_before) * 1024 < 12 * len(body)
    for pid, peak in worker_peaks.items():
        assert (peak - worker_rss_before[pid]) * 1024 < 12 * len(body)

    rows = records(open_store(store_url))
    dense_records = [r for r in rows if r.get("type") != "egress" and r.get("bytes_in") == len(body)]
    assert len(dense_records) == DENSE_SENDS * len(runs)
    for status, answer, record in zip(run.statuses, run.answers, dense_records[-DENSE_SENDS:], strict=True):
        if status == 413:
            error = orjson.loads(answer)["error"]
            assert error["type"] == "request_too_large"
            assert b"inspection_budget_exceeded" in answer
            assert record["outcome"] == "refused"
        else:
            assert status == 200, answer
            assert record["outcome"] == "forwarded"
    assert all(b"glpat-" not in r.body for r in upstream.received)
    assert any(len(r.body) < len(body) for r in upstream.received)


def warm_workers(url: str, key: str, tmp_path: Path) -> None:
    """Start the worker processes (they start with the first large bodies), one per core."""
    body = write(tmp_path / "warm.json", message("x " * 600_000))
    warm = [send_with_curl(url, key, body, tmp_path / f"warm-{n}") for n in range(len(os.sched_getaffinity(0)))]
    assert [int(w.communicate()[0]) for w in warm] == [200] * len(warm)  # type: ignore[index]


def idle_ticks(workers: list[int]) -> dict[int, int]:
    """The workers' CPU ticks once they have stopped using CPU."""
    ticks = {pid: cpu_ticks(pid) for pid in workers}
    while True:
        time.sleep(0.2)
        now = {pid: cpu_ticks(pid) for pid in workers}
        if now == ticks:
            return now
        ticks = now


def test_a_worker_killed_mid_inspection_fails_only_its_request(upstream, tmp_path, memory_dir):
    """SIGKILL to the worker process inspecting a dense 30 MB body: that request is refused with
    the native stage_failed error and audited, nothing is sent upstream, and the gateway's next
    large body is inspected and masked by a fresh worker."""
    store_url = f"sqlite:///{memory_dir / 'data' / 'egress.db'}"
    config = write_config(memory_dir, upstream.url, store={"url": store_url}, server={"body_read_timeout_s": 60})
    seed = open_store(store_url)
    seed.migrate()
    secret, key = new_key("kill", None)
    seed.create_key(key)
    seed.close()
    body = dense_body()
    body_file = write(tmp_path / "dense.json", body)
    proc, url = serve(tmp_path, config)
    try:
        warm_workers(url, secret, tmp_path)
        workers = worker_processes(proc.pid)
        before = idle_ticks(workers)
        sender = send_with_curl(url, secret, body_file, tmp_path / "answer.json")
        victim = None
        while victim is None and sender.poll() is None:
            time.sleep(0.01)
            # The worker that took the dense body: 0.2 s of CPU into it.
            victim = next((pid for pid in workers if cpu_ticks(pid) - before[pid] >= 20), None)
        assert victim is not None, "the dense request finished before a worker was seen working on it"
        os.kill(victim, signal.SIGKILL)
        status = int(sender.communicate()[0])
        answer = orjson.loads((tmp_path / "answer.json").read_bytes())

        # The gateway goes on: a large body with one secret is masked by a new worker.
        token = "glpat-" + base64.urlsafe_b64encode(os.urandom(15)).decode()
        after = send_with_curl(url, secret, write(tmp_path / "after.json", message("x " * 600_000 + token)), tmp_path / "a")
        assert int(after.communicate()[0]) == 200
        assert victim not in worker_processes(proc.pid)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)

    assert status == 500, answer
    assert answer["error"]["type"] == "api_error"
    assert answer["error"]["details"]["error_code"] == "stage_failed"
    rows = records(open_store(store_url))
    (record,) = [r for r in rows if r.get("type") != "egress" and r.get("bytes_in") == len(body)]
    assert (record["outcome"], record["error_code"]) == ("refused", "stage_failed")
    assert record["error_stage"] in ("inspect", "mask")
    assert all(len(r.body) < 2_000_000 and b"glpat-" not in r.body for r in upstream.received)
    assert any(b"x x x" in r.body for r in upstream.received)  # the body after the crash, masked


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_inspection_past_its_cpu_budget_is_refused_natively_and_audited(upstream, tmp_path):
    """A tiny budget makes an ordinary dense prompt overrun it: refused with the native 413,
    code inspection_budget_exceeded, nothing sent upstream, and the refusal audited."""
    from tests.conftest import start_gateway

    config = write_config(tmp_path, upstream.url, detection={"cpu_budget_s": 0.001, "inline_max_kb": 0})
    running = start_gateway(config)
    try:
        text = " ".join("glpat-" + base64.urlsafe_b64encode(os.urandom(15)).decode() for _ in range(1_500))
        doc = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": text}]}
        r = httpx.post(
            running.url + "/v1/messages", content=orjson.dumps(doc), headers={**HEADERS, "x-egress-key": running.key}
        )
        assert r.status_code == 413, r.text
        assert r.json()["error"]["type"] == "request_too_large"
        assert r.json()["error"]["details"]["error_code"] == "inspection_budget_exceeded"
        assert upstream.received == []
        (record,) = running.audit(expect=1)
        assert (record["outcome"], record["error_code"], record["error_stage"]) == (
            "refused",
            "inspection_budget_exceeded",
            "inspect",
        )
        # An ordinary request on the same gateway is inspected (off the loop: inline_max_kb 0) and sent.
        ok = httpx.post(running.url + "/v1/messages", content=SMALL, headers={**HEADERS, "x-egress-key": running.key})
        assert ok.status_code == 200, ok.text
    finally:
        running.stop()
