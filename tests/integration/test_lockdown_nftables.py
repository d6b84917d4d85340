"""The nftables lock-down, for real, in network namespaces this test creates.

    developer 10.R.1.2 --veth-- 10.R.1.1 gateway 10.R.2.1 --veth-- 10.R.2.2 provider

The gateway namespace routes between the two others, so without the ruleset the developer reaches
the provider directly. The provider runs the upstream simulator on 10.R.2.2 and the gateway runs
`egress serve`; in both the gateway's and the developer's namespace `api.anthropic.com` resolves
to the provider (split-horizon DNS, as a private endpoint would), and the ruleset is generated with
that address pinned in `lockdown.addresses`. Then, in the developer namespace:

- before the ruleset: a direct connection opens, and `egress lockdown check` fails (exit 1);
- after `nft -f` of the generated ruleset: the direct connection fails, a request through the
  gateway reaches the provider (inspected: the secret in it arrives masked; audited), and
  `egress lockdown check` reports every provider host blocked and the gateway ready (exit 0).

Namespaces (unique names), their /etc/netns files and the processes in them are removed at the
end, also on failure. Where namespaces cannot be made (no root, no `ip`/`nft`), the test fails
saying so: it never skips.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from egress.config import default_cache_dir
from tests.support.gateway import SIM_ENV
from tests.support.simulator import UpstreamSimulator

EGRESS = [sys.executable, "-m", "egress"]
CLONE_NEWNET = 0x40000000
SECRET = "AKIAZ3MPLE7Q4XW2RT5N"  # an AWS access key id shape: the gateway must mask it


@dataclass(frozen=True)
class Net:
    developer: str
    gateway: str
    provider: str
    developer_ip: str
    gateway_ip: str  # the gateway's address on the developer side
    gateway_far_ip: str
    provider_ip: str


def sh(
    *args: str, check: bool = True, timeout: float = 30, env: dict | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


def in_ns(ns: str, *args: str, **kw) -> subprocess.CompletedProcess[str]:
    return sh("ip", "netns", "exec", ns, *args, **kw)


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    missing = [tool for tool in ("ip", "nft") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{missing} not installed: apt-get install -y iproute2 nftables (scripts/test.sh does)")
    tag = uuid.uuid4().hex[:6]
    # A private /16 picked from the tag, inside this test's namespaces only.
    octet = 16 + int(tag[:2], 16) % 200
    names = Net(
        developer=f"eg-dev-{tag}",
        gateway=f"eg-gw-{tag}",
        provider=f"eg-prov-{tag}",
        developer_ip=f"10.{octet}.1.2",
        gateway_ip=f"10.{octet}.1.1",
        gateway_far_ip=f"10.{octet}.2.1",
        provider_ip=f"10.{octet}.2.2",
    )
    created: list[str] = []
    etc = [Path("/etc/netns") / n for n in (names.developer, names.gateway, names.provider)]
    try:
        for ns in (names.developer, names.gateway, names.provider):
            made = sh("ip", "netns", "add", ns, check=False)
            if made.returncode != 0:
                pytest.fail(
                    f"cannot create network namespace {ns} ({made.stderr.strip()}): this test needs root "
                    "(CAP_SYS_ADMIN and CAP_NET_ADMIN) to build its developer/gateway/provider namespaces"
                )
            created.append(ns)
            in_ns(ns, "ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", f"d{tag}", "type", "veth", "peer", "name", f"g{tag}")
        sh("ip", "link", "set", f"d{tag}", "netns", names.developer)
        sh("ip", "link", "set", f"g{tag}", "netns", names.gateway)
        sh("ip", "link", "add", f"h{tag}", "type", "veth", "peer", "name", f"p{tag}")
        sh("ip", "link", "set", f"h{tag}", "netns", names.gateway)
        sh("ip", "link", "set", f"p{tag}", "netns", names.provider)
        in_ns(names.developer, "ip", "addr", "add", f"{names.developer_ip}/24", "dev", f"d{tag}")
        in_ns(names.gateway, "ip", "addr", "add", f"{names.gateway_ip}/24", "dev", f"g{tag}")
        in_ns(names.gateway, "ip", "addr", "add", f"{names.gateway_far_ip}/24", "dev", f"h{tag}")
        in_ns(names.provider, "ip", "addr", "add", f"{names.provider_ip}/24", "dev", f"p{tag}")
        for ns, dev in (
            (names.developer, f"d{tag}"),
            (names.gateway, f"g{tag}"),
            (names.gateway, f"h{tag}"),
            (names.provider, f"p{tag}"),
        ):
            in_ns(ns, "ip", "link", "set", dev, "up")
        in_ns(names.developer, "ip", "route", "add", "default", "via", names.gateway_ip)
        in_ns(names.provider, "ip", "route", "add", "default", "via", names.gateway_far_ip)
        in_ns(names.gateway, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        # Split-horizon names for the developer and the gateway; no reachable DNS server, so every
        # other provider name fails fast instead of waiting on a resolver.
        for path in etc[:2]:
            path.mkdir(parents=True, exist_ok=True)
            (path / "hosts").write_text(f"127.0.0.1 localhost\n{names.provider_ip} api.anthropic.com\n")
            (path / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        yield names
    finally:
        for ns in created:
            sh("ip", "netns", "del", ns, check=False)
        for path in etc:
            shutil.rmtree(path, ignore_errors=True)
        leftover = [ns for ns in created if ns in sh("ip", "netns", "list", check=False).stdout]
        assert not leftover, f"network namespaces left behind: {leftover}"


def start_in_namespace(ns: str, simulator: UpstreamSimulator) -> None:
    """Start the simulator from a thread moved into `ns`: the server thread it starts inherits
    the namespace, so its socket listens there (the rest of the test process stays put)."""
    errors: list[BaseException] = []

    def enter_and_start() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
            finally:
                os.close(fd)
            simulator.start()
        except (OSError, RuntimeError) as exc:  # re-raised in the test's thread
            errors.append(exc)

    thread = threading.Thread(target=enter_and_start, name=f"enter {ns}")
    thread.start()
    thread.join(20)
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def site(net: Net, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("lockdown")
    simulator = UpstreamSimulator(host=net.provider_ip)
    start_in_namespace(net.provider, simulator)
    port = 8080
    config = {
        "data_dir": str(tmp / "data"),
        "server": {"host": net.gateway_ip, "port": port},
        "auth": {"required": True, "key_refresh_s": 0.2},
        "masking": {"kinds": ["secret"]},
        "providers": [
            {
                "name": "anthropic",
                "catalog": "anthropic",
                "base_url": f"http://api.anthropic.com:{simulator.port}",
                "credentials": {"env": "SIM_ANTHROPIC_KEY"},
            }
        ],
        "lockdown": {
            "gateway": {"addresses": [f"{net.gateway_ip}/32"], "url": f"http://{net.gateway_ip}:{port}"},
            "addresses": {"api.anthropic.com": [net.provider_ip]},
            "check_timeout_s": 2,
        },
    }
    path = tmp / "egress.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    # The compiled rule prefilter is cached outside the temporary HOME (as test_serve_cli does), so
    # the gateway does not recompile it on start.
    cache = default_cache_dir(os.environ).parent
    env = {**os.environ, **SIM_ENV, "HOME": str(tmp), "EGRESS_CONFIG": str(path), "XDG_CACHE_HOME": str(cache)}
    key = sh(*EGRESS, "keys", "create", "--user", "dana", "--config", str(path), timeout=60, env=env)
    gateway_key = key.stdout.strip().splitlines()[-1].split()[-1]
    serve = subprocess.Popen(
        ["ip", "netns", "exec", net.gateway, *EGRESS, "serve", "--config", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            probe = in_ns(net.developer, *_http_get(f"http://{net.gateway_ip}:{port}/readyz"), check=False)
            if probe.returncode == 0 and probe.stdout.strip() == "200":
                break
            if serve.poll() is not None or time.monotonic() > deadline:
                serve.kill()
                raise AssertionError(
                    f"egress serve did not become ready in {net.gateway}: {serve.stdout.read() if serve.stdout else ''}"
                )
            time.sleep(0.2)
        yield {"config": path, "env": env, "key": gateway_key, "simulator": simulator, "port": port, "tmp": tmp}
    finally:
        serve.terminate()
        try:
            serve.wait(15)
        except subprocess.TimeoutExpired:
            serve.kill()
        simulator.stop()


def _http_get(url: str) -> tuple[str, ...]:
    code = f"import httpx; print(httpx.get({url!r}, timeout=2).status_code)"
    return (sys.executable, "-c", code)


def _connect(address: str, port: int) -> tuple[str, ...]:
    code = (
        "import socket, sys\n"
        "try:\n"
        f"    socket.create_connection(({address!r}, {port}), timeout=2).close()\n"
        "except OSError as exc:\n"
        "    print(type(exc).__name__); sys.exit(1)\n"
        "print('connected')\n"
    )
    return (sys.executable, "-c", code)


def _check(net: Net, site: dict) -> tuple[int, dict]:
    result = in_ns(
        net.developer, *EGRESS, "lockdown", "check", "--json", "--config", str(site["config"]), check=False, timeout=60
    )
    assert result.returncode in (0, 1, 3), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_ruleset_blocks_direct_access_and_the_gateway_still_reaches_the_provider(net: Net, site: dict) -> None:
    simulator: UpstreamSimulator = site["simulator"]
    port = simulator.port

    # Before: the developer reaches the provider directly, and the check says so.
    assert in_ns(net.developer, *_connect(net.provider_ip, port), check=False).stdout.strip() == "connected"
    code, before = _check(net, site)
    assert code == 1
    assert before["reachable_directly"] == ["api.anthropic.com"]

    # The ruleset, generated from the same configuration, applied in the developer namespace.
    out = site["tmp"] / "nft"
    sh(*EGRESS, "lockdown", "export", "--format", "nftables", "--config", str(site["config"]), "-o", str(out))
    ruleset = (out / "egress-lockdown.nft").read_text()
    assert f'{net.provider_ip} comment "api.anthropic.com"' in ruleset
    in_ns(net.developer, "nft", "-f", str(out / "egress-lockdown.nft"))

    # Direct: the provider's address is dropped.
    direct = in_ns(net.developer, *_connect(net.provider_ip, port), check=False)
    assert direct.returncode == 1 and direct.stdout.strip() in ("TimeoutError", "timeout"), direct.stdout
    chain = in_ns(net.developer, "nft", "list", "chain", "inet", "egress_lockdown", "output").stdout
    dropped = re.search(r"ip daddr @providers_v4 counter packets (\d+)", chain)
    assert dropped and int(dropped.group(1)) > 0, chain

    # Through the gateway: the request reaches the provider, inspected (the key masked) and audited.
    simulator.reset()
    request = (
        "import httpx, json, sys\n"
        f"r = httpx.post('http://{net.gateway_ip}:{site['port']}/v1/messages', timeout=20,\n"
        f"    headers={{'x-egress-key': {site['key']!r}, 'x-api-key': 'sk-ant-dev', 'anthropic-version': '2023-06-01'}},\n"
        "    json={'model': 'claude-sonnet-4-5', 'max_tokens': 64,\n"
        f"          'messages': [{{'role': 'user', 'content': 'deploy with key {SECRET} please'}}]}})\n"
        "print(r.status_code); print(r.text[:300])\n"
    )
    through = in_ns(net.developer, sys.executable, "-c", request, timeout=60)
    assert through.stdout.splitlines()[0] == "200", through.stdout
    assert len(simulator.received) == 1
    sent = simulator.received[0].body.decode()
    assert SECRET not in sent and "deploy with key" in sent
    tail = sh(
        *EGRESS, "audit", "tail", "-n", "1", "--json", "--config", str(site["config"]), timeout=60, env=site["env"]
    )
    record = json.loads(tail.stdout.strip().splitlines()[-1])
    assert record["endpoint"] == "anthropic" and record["user"] == "dana", record
    assert record["findings"]["kinds"].get("secret", 0) >= 1 and record["masked"]["count"] >= 1, record

    # The check, from the developer namespace: every provider host blocked, the gateway ready.
    code, after = _check(net, site)
    assert code == 0, after
    assert after["reachable_directly"] == [] and after["gateway"]["status"] == 200
    verdicts = {(h["host"], h["port"]): h for h in after["hosts"]}
    endpoint = verdicts[("api.anthropic.com", port)]
    assert (
        endpoint["addresses"] == [net.provider_ip] and endpoint["tcp"] == "timeout" and endpoint["verdict"] == "blocked"
    )
    assert all(h["verdict"] in ("blocked", "not probed") for h in after["hosts"])
    assert after["seconds"] <= 10

    # `refresh --apply`, run where the ruleset lives, re-resolves and reloads it in place.
    refreshed = site["tmp"] / "refreshed"
    in_ns(
        net.developer,
        *EGRESS,
        "lockdown",
        "refresh",
        "--apply",
        "--config",
        str(site["config"]),
        "-o",
        str(refreshed),
        timeout=60,
    )
    assert (refreshed / "egress-lockdown.nft").read_text() == ruleset  # same inputs, same bytes
    listed = in_ns(net.developer, "nft", "list", "set", "inet", "egress_lockdown", "providers_v4").stdout
    assert net.provider_ip in listed
    assert in_ns(net.developer, *_connect(net.provider_ip, port), check=False).returncode == 1
