"""`egress serve`'s pieces that need no server: the banner for each credential mode, the
compile notice's trigger, the pid file's ownership, the port check."""

from __future__ import annotations

import io
import os
import socket
import sys
import time
from pathlib import Path

import pytest

from egress.app import FileBlobCache
from egress.cli.serve import CompileNotice, PidFile, PortInUse, _serve, banner_lines, bind_listener
from egress.config import load_config
from tests.support.gateway import SIM_ENV, write_config

KEY = "egk_" + "k" * 43


def test_passthrough_defaults_tell_claude_code_to_add_a_header(tmp_path):
    config = load_config(None, env={"HOME": str(tmp_path), "EGRESS_DATA_DIR": str(tmp_path / "data")})
    text = "\n".join(banner_lines(config, 8080, KEY))
    assert f'export ANTHROPIC_CUSTOM_HEADERS="x-egress-key: {KEY}"' in text
    assert "ANTHROPIC_AUTH_TOKEN" not in text
    assert 'env_key = "OPENAI_API_KEY"' in text and 'env_http_headers = { "x-egress-key" = "EGRESS_KEY" }' in text
    assert f"extra header x-egress-key: {KEY}" in text
    assert "egress listening on http://127.0.0.1:8080" in text and "store it now): " + KEY in text


def test_env_credentials_make_the_gateway_key_the_api_key(tmp_path):
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9"), env={**SIM_ENV, "HOME": str(tmp_path)})
    text = "\n".join(banner_lines(config, 8443, KEY))
    assert f"export ANTHROPIC_AUTH_TOKEN={KEY}" in text
    assert "ANTHROPIC_CUSTOM_HEADERS" not in text
    assert 'env_key = "EGRESS_KEY"' in text and "env_http_headers" not in text
    assert f"export OPENAI_API_KEY={KEY}" in text


def test_a_mix_of_modes_keeps_the_header_that_works_for_both(tmp_path):
    path = write_config(tmp_path, "http://127.0.0.1:9")
    text = path.read_text().replace("credentials:\n    env: SIM_ANTHROPIC_KEY", "credentials:\n    passthrough: true")
    path.write_text(text)
    config = load_config(path, env={**SIM_ENV, "HOME": str(tmp_path)})
    assert config.providers[0].credentials.passthrough and not config.providers[1].credentials.passthrough
    banner = "\n".join(banner_lines(config, 8080, None))
    assert "ANTHROPIC_CUSTOM_HEADERS" in banner and "ANTHROPIC_AUTH_TOKEN" not in banner  # Anthropic: pass-through
    assert 'env_key = "EGRESS_KEY"' in banner  # OpenAI: egress's own key
    assert "<your gateway key: egress keys create --user YOU>" in banner  # no key minted: none shown


def test_the_compile_notice_fires_on_a_cache_miss_only(tmp_path):
    misses: list[int] = []
    cache = FileBlobCache(tmp_path / "cache", on_miss=lambda: misses.append(1))
    assert cache.get("prefilter-x") is None and misses == [1]
    cache.put("prefilter-x", b"blob")
    assert cache.get("prefilter-x") == b"blob" and misses == [1]


def test_a_busy_port_is_refused_before_anything_else():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(PortInUse) as refused:
            bind_listener("127.0.0.1", port)
        assert f"127.0.0.1:{port}" in refused.value.message and "already in use" in refused.value.message
        assert refused.value.exit_code == 1


def test_a_bound_listener_accepts_connections_at_once():
    sock = bind_listener("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname(), timeout=2):
            pass  # queued in the backlog: the port is ours before the gateway is built
    finally:
        sock.close()


def test_the_pid_file_is_removed_only_when_it_is_ours(tmp_path: Path):
    pid_file = PidFile(tmp_path / "egress.pid")
    pid_file.write()
    assert pid_file.path.read_text().strip() == str(os.getpid())
    pid_file.path.write_text("999999\n")  # another gateway's
    pid_file.remove_if_ours()
    assert pid_file.path.read_text() == "999999\n"
    pid_file.write()
    pid_file.remove_if_ours()
    assert not pid_file.path.exists()
    pid_file.remove_if_ours()  # gone already: nothing to do


async def _failing_startup(scope, receive, send):  # an ASGI app whose lifespan startup fails
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "the store is gone"})


def test_a_failed_startup_exits_non_zero_without_a_banner(tmp_path):
    config = load_config(None, env={"HOME": str(tmp_path), "EGRESS_DATA_DIR": str(tmp_path / "data")})
    announced: list[int] = []
    stopped: list[int] = []
    sock = bind_listener("127.0.0.1", 0)
    try:
        with pytest.raises(SystemExit) as exited:
            _serve(
                config, None, "critical", sock, _failing_startup, lambda: announced.append(1), lambda: stopped.append(1)
            )
    finally:
        sock.close()
    assert exited.value.code == 3 and announced == []  # no banner, so no key minted either


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_the_compile_notice_counts_seconds_on_a_terminal_only(monkeypatch, tmp_path, terminal):
    err = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    notice = CompileNotice(tmp_path / "cache")
    notice.TICK_S = 0.01
    notice()
    notice()  # once per start, however many misses
    if terminal:  # wait for the first tick, however busy the machine
        deadline = time.monotonic() + 30
        while "\r" not in err.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        assert notice._ticker is None
    notice.done()
    text = err.getvalue()
    assert text.count("compiling detection rules (first start") == 1 and f"cached afterwards in {tmp_path}" in text
    assert ("\r  0 s" in text) is terminal
    assert text.rstrip().splitlines()[-1].lstrip("\r").startswith("detection rules compiled in ")


def test_no_compile_no_notice(monkeypatch, tmp_path):
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    CompileNotice(tmp_path).done()
    assert err.getvalue() == ""
