"""`egress serve`: claim the port, build the gateway, then say it listens.

Order matters, and each step is an invariant a user relies on:
1. the listening socket is bound first, so a port conflict fails before anything else happens
   (no gateway key is minted, no pid file is written or removed);
2. the gateway is built (the detection automaton compiles here on a first start: we say so);
3. the pid file is written;
4. once the server answers requests on that socket, and only then, the first gateway key is
   created (a start that fails never uses up the key "shown once") and the banner ("egress
   listening on …", the key, the lines to paste) is printed;
5. on exit the pid file is removed only if it still holds our pid.
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import logging
import os
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import uvicorn
from uvicorn.supervisors import Multiprocess

from egress.app import ENV_SERVE_CONFIG, build_app, build_matcher, freeze_after_start, open_configured_store
from egress.cli.options import os_user
from egress.cli.policy import PID_FILE
from egress.config import Config
from egress.core.endpoint import Endpoint, WireApi
from egress.gateway.auth import KEY_HEADER, new_key
from egress.gateway.http_protocol import with_header_timeout
from egress.telemetry.exposition import Listener, MetricsPage, token_from_env
from egress.telemetry.logs import ENV_LOG_LEVEL, configure_logging
from egress.telemetry.multiproc import MultiprocDir
from egress.telemetry.settings import LogFormat

STARTUP_FAILURE = 3  # uvicorn's exit status when the application does not start
# Measured on a 2-core machine (docs/performance.md); said to the user, not relied on.
FIRST_COMPILE_ESTIMATE_S = 25


class PortInUse(click.ClickException):
    exit_code = 1


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket, bound and listening (so no other process can claim the port while
    the gateway is being built). Connections made before the server starts wait in the backlog."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"cannot listen on {host}:{port}: the address is already in use (another egress, or another "
                "program, holds it). Stop it or choose another port with --port."
            ) from None
        raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)  # worker processes serve on it
    return sock


@dataclass(frozen=True)
class PidFile:
    """`egress policy reload` finds the running gateway through this file."""

    path: Path

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{os.getpid()}\n")

    def remove_if_ours(self) -> None:
        """Never remove the file of another running gateway (it may have replaced ours)."""
        try:
            if self.path.read_text().strip() == str(os.getpid()):
                self.path.unlink()
        except (OSError, ValueError):
            pass


class CompileNotice:
    """Says, once, that the detection rules are compiling (a cache miss), and how long it took.
    On a terminal the seconds so far are shown while it runs (one line, rewritten)."""

    TICK_S = 1.0

    def __init__(self, cache_dir: Path | None) -> None:
        self.cache_dir = cache_dir
        self.started: float | None = None
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __call__(self) -> None:
        if self.started is not None:
            return
        self.started = time.monotonic()
        where = f"cached afterwards in {self.cache_dir}" if self.cache_dir else "not cached: no cache directory"
        click.echo(
            f"compiling detection rules (first start, or the rules changed: ~{FIRST_COMPILE_ESTIMATE_S} s; {where})…",
            err=True,
        )
        if sys.stderr.isatty():
            self._ticker = threading.Thread(target=self._tick, name="compile-progress", daemon=True)
            self._ticker.start()

    def _tick(self) -> None:
        assert self.started is not None
        while not self._stop.wait(self.TICK_S):
            click.echo(f"\r  {time.monotonic() - self.started:.0f} s", err=True, nl=False)

    def done(self) -> None:
        if self.started is None:
            return
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            click.echo("\r", err=True, nl=False)
        click.echo(f"detection rules compiled in {time.monotonic() - self.started:.1f} s", err=True)


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that calls `on_serving` once it answers requests (after the lifespan
    startup, with the socket served) and `on_stopped` after its shutdown. (uvicorn re-raises
    the signal that stopped it once it has shut down, so code after `run()` may never run.)"""

    def __init__(self, config: uvicorn.Config, on_serving: Callable[[], None], on_stopped: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_serving = on_serving
        self._on_stopped = on_stopped

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self._on_serving()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().shutdown(sockets)
        finally:
            self._on_stopped()


def _wait_then(url_host: str, port: int, tls: bool, proc_alive: Callable[[], bool], then: Callable[[], None]) -> None:
    """Several workers: the supervisor does not know when they serve, so ask /healthz."""
    while proc_alive():
        try:
            if tls:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE  # our own socket: only asking whether it answers
                conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                    url_host, port, timeout=2, context=context
                )
            else:
                conn = http.client.HTTPConnection(url_host, port, timeout=2)
            conn.request("GET", "/healthz")
            ok = conn.getresponse().status == 200
            conn.close()
            if ok:
                then()
                return
        except OSError:
            pass
        time.sleep(0.1)


def run_serve(config: Config, config_path: Path | None, log_level: str) -> None:
    configure_logging(config.logging, log_level)  # text or JSON lines (logging.format)
    os.environ[ENV_LOG_LEVEL] = log_level  # worker processes set up their own logging with it
    for warning in config.warnings:  # what `egress config check` prints: said at every start too
        logging.getLogger("egress").warning("%s", warning)
    server = config.server
    sock = bind_listener(server.host, server.port)
    port = int(sock.getsockname()[1])  # the real one when --port 0
    try:
        notice = CompileNotice(config.detection.cache_dir if config.detection.enabled else None)
        app = None
        if server.workers > 1:
            if config.detection.enabled:
                build_matcher(config, on_compile=notice)  # the workers then load it from the cache
        else:
            app = freeze_after_start(build_app(config, on_compile=notice))
        notice.done()
        pid_file = PidFile(config.resolved_data_dir / PID_FILE)
        pid_file.write()
        printed = threading.Event()

        def announce() -> None:
            """Once the server answers: mint the first key (a key shown in a banner that never
            printed, because the start failed, would be lost) and print the banner."""
            if printed.is_set():
                return
            printed.set()
            click.echo("\n".join(banner_lines(config, port, _ensure_first_key(config))))
            sys.stdout.flush()

        try:
            # Several workers with metrics: their per-process files, for this run only.
            several = app is None and config.metrics.enabled
            with MultiprocDir(config.resolved_data_dir) if several else contextlib.nullcontext() as metrics_dir:
                with _metrics_listener(config, app):
                    _serve(config, config_path, log_level, sock, app, announce, pid_file.remove_if_ours, metrics_dir)
        except KeyboardInterrupt:
            # Ctrl-C: uvicorn shut down cleanly, then re-raised SIGINT. A clean stop exits 0,
            # not click's "Aborted!" with status 1.
            pass
        finally:
            pid_file.remove_if_ours()
    finally:
        sock.close()


def _serve(
    config: Config,
    config_path: Path | None,
    log_level: str,
    sock: socket.socket,
    app: Any,
    announce: Callable[[], None],
    stopped: Callable[[], None],
    metrics_dir: MultiprocDir | None = None,
) -> None:
    server = config.server
    common: dict[str, Any] = dict(
        loop="uvloop",
        http=with_header_timeout(server.header_read_timeout_s),
        lifespan="on",
        access_log=False,
        log_level=log_level,
        timeout_graceful_shutdown=30,
        server_header=False,
        date_header=False,
        proxy_headers=False,  # egress does not trust X-Forwarded-* from its clients
    )
    if config.logging.format is LogFormat.JSON:
        common.update(log_config=None)  # uvicorn's loggers then write through egress's JSON handler
    if server.tls_cert_file is not None:  # both or neither: validated when the config loaded
        common.update(ssl_certfile=str(server.tls_cert_file), ssl_keyfile=str(server.tls_key_file))
    if server.client_ca_file is not None:
        # Inbound mTLS: a certificate is optional (people come with keys), but one that is sent
        # must verify against this CA (unknown issuer, expired: the handshake fails).
        common.update(ssl_ca_certs=str(server.client_ca_file), ssl_cert_reqs=ssl.CERT_OPTIONAL)
    # `egress policy reload` signals this process: with one worker it reloads the policy in
    # place; with several, uvicorn's supervisor restarts the workers one by one (same effect).
    if app is not None:
        uv_server = _AnnouncingServer(uvicorn.Config(app, **common), announce, stopped)
        uv_server.run(sockets=[sock])
        if not uv_server.started:  # the lifespan startup failed (logged): exit as uvicorn.run does
            raise SystemExit(STARTUP_FAILURE)
        return
    if config_path is not None:
        os.environ[ENV_SERVE_CONFIG] = str(config_path.resolve())
    uv_config = uvicorn.Config("egress.app:create_app_from_env", factory=True, workers=server.workers, **common)
    supervisor = _Supervisor(uv_config, sockets=[sock], metrics_dir=metrics_dir)
    supervisor_done = threading.Event()
    host = sock.getsockname()[0]
    probe_host = "127.0.0.1" if host == "0.0.0.0" else "::1" if host == "::" else host
    threading.Thread(
        target=_wait_then,
        args=(
            probe_host,
            int(sock.getsockname()[1]),
            server.tls_cert_file is not None,
            lambda: not supervisor_done.is_set(),
            announce,
        ),
        daemon=True,
    ).start()
    try:
        supervisor.run()
    finally:
        supervisor_done.set()


class _Supervisor(Multiprocess):
    """uvicorn's supervisor that tells the metrics when a worker process is gone (it exited,
    crashed or was replaced), so its live gauges stop counting (prometheus_client's
    mark_process_dead; its counters stay: what they counted happened)."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket.socket], metrics_dir: MultiprocDir | None) -> None:
        super().__init__(config, sockets)
        self._metrics_dir = metrics_dir

    def _pids(self) -> set[int]:
        return {p.pid for p in self.processes if p.pid is not None}

    def _gone(self, before: set[int]) -> None:
        if self._metrics_dir is not None:
            for pid in before - self._pids():
                self._metrics_dir.worker_exited(pid)

    def keep_subprocess_alive(self) -> None:
        before = self._pids()
        super().keep_subprocess_alive()
        self._gone(before)

    def restart_all(self) -> None:
        before = self._pids()
        super().restart_all()
        self._gone(before)


@contextlib.contextmanager
def _metrics_listener(config: Config, app: Any) -> Iterator[None]:
    """/metrics on its own address (metrics.listen), served by this process: with one worker
    from the gateway's registry, with several from every worker's files."""
    address = config.metrics.listen_address if config.metrics.enabled else None
    if address is None:
        yield
        return
    if app is not None:
        page = app.pipeline.telemetry.listener_page
    else:
        page = MetricsPage.multiprocess(token_from_env(config.metrics.token_env))
    try:
        listener = Listener(page, *address).start()
    except OSError as exc:
        raise PortInUse(f"cannot serve metrics on {config.metrics.listen}: {exc.strerror}") from None
    try:
        yield
    finally:
        listener.close()


def _ensure_first_key(config: Config) -> str | None:
    """On a fresh install with keys required, create one key for the local user and show it once."""
    if not config.auth.required:
        return None
    store = open_configured_store(config)
    try:
        if store.list_keys():
            return None
        secret, key = new_key(os_user(), None)
        store.create_key(key)
        return secret
    finally:
        store.close()


def _own_credentials(endpoints: tuple[Endpoint, ...], apis: tuple[WireApi, ...]) -> bool:
    """Every endpoint of these wire APIs sends egress's own provider key (`{env: …}`): the
    client's credential is dropped, so its API key can simply be the gateway key."""
    chosen = [e for e in endpoints if e.api in apis]
    return bool(chosen) and all(not e.credentials.passthrough for e in chosen)


def _vibe_lines(endpoints: tuple[Endpoint, ...], base: str, key: str) -> list[str]:
    """Mistral Vibe's config, when `api: mistral` endpoints can answer it with egress's own key
    (Vibe sends the gateway key as its API key: the tested set-up). `vibe_base_url` points at
    egress too: Vibe fetches its organisation's managed config from there with the provider key,
    which would otherwise take the gateway key to chat.mistral.ai."""
    mistral = [e for e in endpoints if e.api is WireApi.MISTRAL]
    if not mistral:
        return []
    if not _own_credentials(endpoints, (WireApi.MISTRAL,)):
        return ["", "Mistral Vibe: give the `api: mistral` endpoints {env: ...} credentials (README, agent table)"]
    model = next((m for e in mistral for m in e.listed_models()), "devstral-medium-latest")
    return [
        "",
        "Mistral Vibe (~/.vibe/config.toml; the top-level keys before the tables):",
        f'  vibe_base_url = "{base}"',
        '  active_model = "egress"',
        "  [[providers]]",
        '  name = "egress"',
        f'  api_base = "{base}/v1"',
        '  backend = "mistral"',
        '  api_key_env_var = "EGRESS_KEY"',
        "  [[models]]",
        f'  name = "{model}"',
        '  provider = "egress"',
        '  alias = "egress"',
        f"  # and: export EGRESS_KEY={key}",
    ]


# The endpoint kinds that answer the Gemini API (a Chat endpoint answers it too, translated).
_GEMINI_KINDS = (WireApi.GEMINI, WireApi.VERTEX_GEMINI)


def _gemini_lines(endpoints: tuple[Endpoint, ...], base: str, key: str, header: str) -> list[str]:
    """Gemini CLI's environment, when a Gemini endpoint is configured (README, agent table):
    the gateway key as GEMINI_API_KEY where egress sends its own credential, else as a header
    beside the user's own Google key. 0.61.0 also needs its auth type named in settings.json."""
    if not any(e.api in _GEMINI_KINDS for e in endpoints):
        return []
    lines = ["", "Gemini CLI:", f"  export GOOGLE_GEMINI_BASE_URL={base}"]
    if _own_credentials(endpoints, _GEMINI_KINDS):
        lines.append(f"  export GEMINI_API_KEY={key}   # egress sends its own credential upstream")
    else:
        lines.append(f'  export GEMINI_CLI_CUSTOM_HEADERS="{header}: {key}"   # keep your own GEMINI_API_KEY')
    lines.append('  # ~/.gemini/settings.json: {"security": {"auth": {"selectedType": "gemini-api-key"}}}')
    return lines


def banner_lines(config: Config, port: int, first_key: str | None) -> list[str]:
    server = config.server
    base = (
        server.public_url
        or f"{'https' if server.tls_cert_file else 'http'}://"
        f"{'127.0.0.1' if server.host in ('0.0.0.0', '::') else server.host}:{port}"
    )
    key = first_key or "<your gateway key: egress keys create --user YOU>"
    header = KEY_HEADER.decode()
    anthropic_own = _own_credentials(config.providers, (WireApi.ANTHROPIC,))
    openai_own = _own_credentials(config.providers, (WireApi.OPENAI, WireApi.OPENAI_CHAT))
    lines = [
        f"egress listening on {base}  (store: {config.store_url.split('://')[0]}, data: {config.resolved_data_dir})",
    ]
    if first_key:
        lines.append(f"Created the first gateway key for {os_user()} (shown once, store it now): {first_key}")
    lines += ["", "Claude Code:", f"  export ANTHROPIC_BASE_URL={base}"]
    if anthropic_own:
        lines.append(f"  export ANTHROPIC_AUTH_TOKEN={key}   # egress sends its own provider key upstream")
    else:
        lines.append(f'  export ANTHROPIC_CUSTOM_HEADERS="{header}: {key}"   # keep your own Anthropic key or login')
    lines += [
        "",
        "Codex CLI (~/.codex/config.toml):",
        '  model_provider = "egress"',
        "  [model_providers.egress]",
        '  name = "egress"',
        f'  base_url = "{base}/v1"',
        '  wire_api = "responses"',
    ]
    if openai_own:
        lines += ['  env_key = "EGRESS_KEY"', f"  # and: export EGRESS_KEY={key}"]
    else:
        lines += [
            '  env_key = "OPENAI_API_KEY"',
            f'  env_http_headers = {{ "{header}" = "EGRESS_KEY" }}',
            f"  # and: export EGRESS_KEY={key}",
        ]
    lines += _vibe_lines(config.providers, base, key)
    lines += _gemini_lines(config.providers, base, key, header)
    lines += [
        "",
        "aider / Continue / Cline / OpenCode (OpenAI-compatible):",
        f"  export OPENAI_BASE_URL={base}/v1   # aider: OPENAI_API_BASE",
        f"  export OPENAI_API_KEY={key}" if openai_own else f"  extra header {header}: {key}",
        "",
    ]
    if config.console.enabled:
        lines += [f"Console: {base}/admin   (first account: egress admin add-user NAME --role admin)", ""]
    return lines
