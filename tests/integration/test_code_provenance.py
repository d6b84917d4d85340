"""Indexed code is routed by what it is, end to end: `egress index` then `egress serve`.

A git repository made here (real source files, several commits) is indexed as the organisation's
code, and a copy of a standard-library module as public code. Three upstream simulators stand for
a US cloud, an EU cloud and a self-hosted server (Chat Completions, answered through
translation). The official anthropic SDK sends Claude Code-shaped requests: a renamed excerpt of
the repository read back by a tool must reach only the self-hosted server; standard-library code
and public code the repository happens to contain go to the cloud.
"""

from __future__ import annotations

import re
import signal
import subprocess
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from egress.app import open_configured_store
from egress.config import load_config
from tests.integration.test_serve_cli import env, run, start_serve  # noqa: F401 - `env` is a fixture
from tests.integration.test_sovereign_routing import providers
from tests.support.console import login
from tests.support.gateway import SIM_ENV, write_config
from tests.support.simulator import UpstreamSimulator

INVOICES = '''"""Invoices for the billing service: totals, taxes and dunning."""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal

VAT_RATES = {"DE": Decimal("0.19"), "FR": Decimal("0.20"), "NL": Decimal("0.21")}


@dataclass
class Line:
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass
class Invoice:
    number: str
    country: str
    lines: list[Line] = field(default_factory=list)
    reminders: int = 0

    def net(self) -> Decimal:
        total = sum((line.unit_price * line.quantity for line in self.lines), Decimal("0"))
        return total.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)

    def tax(self) -> Decimal:
        rate = VAT_RATES.get(self.country)
        if rate is None:
            raise ValueError(f"no VAT rate for {self.country}")
        return (self.net() * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)

    def gross(self) -> Decimal:
        return self.net() + self.tax()


def dunning_level(invoice: Invoice, days_overdue: int) -> str:
    """Which letter an overdue invoice gets next."""
    if days_overdue <= 0:
        return "none"
    if days_overdue < 14 and invoice.reminders == 0:
        return "friendly"
    if days_overdue < 30:
        return "reminder" if invoice.reminders < 2 else "final"
    if invoice.gross() > Decimal("5000"):
        return "collections"
    return "final"


def merge_invoices(first: Invoice, second: Invoice) -> Invoice:
    if first.country != second.country:
        raise ValueError("invoices of different countries cannot be merged")
    merged = Invoice(number=f"{first.number}+{second.number}", country=first.country)
    by_sku: dict[tuple[str, Decimal], int] = {}
    for line in [*first.lines, *second.lines]:
        key = (line.sku, line.unit_price)
        by_sku[key] = by_sku.get(key, 0) + line.quantity
    for (sku, price), quantity in sorted(by_sku.items()):
        if quantity:
            merged.lines.append(Line(sku, quantity, price))
    merged.reminders = max(first.reminders, second.reminders)
    return merged
'''

LEDGER = '''"""Double-entry postings for settled invoices."""

from collections import defaultdict


class Ledger:
    def __init__(self):
        self.postings = []
        self.balances = defaultdict(int)

    def post(self, debit, credit, cents, memo=""):
        if cents <= 0:
            raise ValueError("a posting moves a positive amount")
        if debit == credit:
            raise ValueError("debit and credit must differ")
        self.postings.append((debit, credit, cents, memo))
        self.balances[debit] += cents
        self.balances[credit] -= cents

    def trial_balance(self):
        assert sum(self.balances.values()) == 0, "the books do not balance"
        return dict(sorted(self.balances.items()))
'''

# The excerpt as an agent shows it: identifiers renamed, read back by a tool with line numbers.
RENAMES = {
    "invoice": "bill",
    "Invoice": "Bill",
    "lines": "items",
    "line": "item",
    "merged": "combined",
    "by_sku": "tally",
}


def renamed_excerpt(start: int, count: int) -> str:
    lines = INVOICES.split("\n")[start : start + count]
    text = "\n".join(lines)
    for old, new in RENAMES.items():
        text = re.sub(rf"\b{old}\b", new, text)
    return "\n".join(f"{start + 1 + i:>6}→{line}" for i, line in enumerate(text.split("\n")))


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "billing"
    (root / "billing").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    (root / "billing" / "ledger.py").write_text(LEDGER)
    git(root, "add", ".")
    git(root, "commit", "-qm", "ledger")
    (root / "billing" / "invoices.py").write_text(INVOICES)
    git(root, "add", ".")
    git(root, "commit", "-qm", "invoices")
    # Open-source code copied into the repository: public, so it must not count.
    (root / "billing" / "wrap.py").write_text(Path(textwrap.__file__).read_text())
    git(root, "add", ".")
    git(root, "commit", "-qm", "vendored text wrapping")
    return root


@pytest.fixture
def clouds(sims: dict[str, UpstreamSimulator]) -> dict[str, UpstreamSimulator]:
    for sim in sims.values():
        sim.reset()
    return sims


@contextmanager
def serving(
    env: dict[str, str],  # noqa: F811 - a parameter, not the fixture
    tmp_path: Path,
    repo: Path,
    clouds: dict[str, UpstreamSimulator],
    **extra: Any,
) -> Iterator[tuple[str, str, Path]]:
    """`egress serve` on the three simulators, with the repository and public code indexed."""
    urls = {name: sim.url for name, sim in clouds.items()}
    config = write_config(tmp_path, urls["us"], providers=providers(urls), masking={"kinds": ["secret"]}, **extra)
    public = tmp_path / "public"
    public.mkdir()
    (public / "textwrap.py").write_text(Path(textwrap.__file__).read_text())
    added = run(["index", "add", str(repo), "--name", "billing", "--config", str(config)], env)
    assert added.returncode == 0, added.stderr
    assert "billing: 3 files" in added.stderr
    public_added = run(
        ["index", "add", str(public), "--name", "python-stdlib", "--public", "--config", str(config)], env
    )
    assert public_added.returncode == 0, public_added.stderr
    key = run(["keys", "create", "--user", "dana", "--team", "payments", "--config", str(config)], env).stdout.strip()
    proc, url = start_serve(env, "--config", str(config))
    try:
        yield url, key, config
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        print(out)  # the gateway's log, shown when a test fails


@pytest.fixture
def gateway(
    env: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    repo: Path,
    clouds: dict[str, UpstreamSimulator],
) -> Iterator[tuple[str, str, Path]]:
    with serving(env, tmp_path, repo, clouds) as running:
        yield running


def claude_code_request(url: str, key: str, tool_output: str, stream: bool) -> str:
    """A Claude Code-shaped turn: the agent read a file with its Read tool; the user asks about it."""
    sdk = anthropic.Anthropic(
        base_url=url, api_key="sk-ant-client", default_headers={"x-egress-key": key}, max_retries=0
    )
    messages: list[Any] = [
        {"role": "user", "content": "Why does the merge lose a line? Look at the file."},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_01", "name": "Read", "input": {"file_path": "src/x.py"}}],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": tool_output},
                {"type": "text", "text": "Please fix it."},
            ],
        },
    ]
    system = "You are Claude Code, Anthropic's official CLI for Claude."
    if stream:
        with sdk.messages.stream(model="claude-sonnet-4-5", max_tokens=64, system=system, messages=messages) as s:
            return s.get_final_text()
    reply = sdk.messages.create(model="claude-sonnet-4-5", max_tokens=64, system=system, messages=messages)
    return "".join(b.text for b in reply.content if b.type == "text")


def audit_records(config: Path) -> list[dict[str, Any]]:
    store = open_configured_store(load_config(config, env=SIM_ENV))
    try:
        records = [orjson.loads(r.entry.canonical) for r in store.iter_audit()]
    finally:
        store.close()
    return [r for r in records if r.get("type") != "egress"]


def sent(sim: UpstreamSimulator) -> bytes:
    return b"".join(r.body for r in sim.received)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_renamed_excerpt_of_the_indexed_repository_goes_to_self_only(gateway, clouds, stream: bool) -> None:
    url, key, config = gateway
    excerpt = renamed_excerpt(42, 20)  # the end of dunning_level and merge_invoices, renamed, as Read tool output
    assert "    54→    tally: dict" in excerpt and excerpt.count("\n") == 19
    assert claude_code_request(url, key, excerpt, stream)
    assert clouds["us"].received == [] and clouds["eu"].received == []
    assert len(clouds["own"].received) == 1 and b"tally" in sent(clouds["own"])
    (record,) = audit_records(config)
    assert record["endpoint"] == "own"
    assert record["findings"]["kinds"]["proprietary_code"] == 1
    assert record["findings"]["rules"] == {"proprietary-code:billing": 1}
    assert "us-cloud: proprietary code goes to self-hosted endpoints only" in record["decision"]["reasons"]
    # Names and counts only: no code, no paths.
    assert "tally" not in str(record) and "invoices.py" not in str(record)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_standard_library_code_goes_to_the_cloud(gateway, clouds, stream: bool) -> None:
    url, key, config = gateway
    stdlib = Path(subprocess.__file__).read_text().split("\n")[400:420]
    tool_output = "\n".join(f"{401 + i:>6}→{line}" for i, line in enumerate(stdlib))
    assert claude_code_request(url, key, tool_output, stream)
    assert len(clouds["us"].received) == 1 and clouds["own"].received == []
    (record,) = audit_records(config)
    assert record["endpoint"] == "us-cloud" and "proprietary_code" not in record["findings"]["kinds"]


def test_public_code_inside_the_repository_goes_to_the_cloud(gateway, clouds) -> None:
    url, key, _ = gateway
    wrapped = Path(textwrap.__file__).read_text().split("\n")[250:280]
    assert claude_code_request(url, key, "\n".join(wrapped), stream=True)
    assert len(clouds["us"].received) == 1 and clouds["own"].received == []


def test_index_list_and_query_show_the_match(gateway, env) -> None:  # noqa: F811 - the fixture
    _, _, config = gateway
    listed = run(["index", "list", "--format", "json", "--config", str(config)], env)
    rows = {r["name"]: r for r in orjson.loads(listed.stdout)}
    assert rows["billing"]["files"] == 3 and rows["billing"]["commit"] and rows["python-stdlib"]["public"] is True
    queried = run(
        ["index", "query", "-", "--format", "json", "--config", str(config)], env, input=renamed_excerpt(42, 20)
    )
    assert queried.returncode == 0, queried.stderr
    (match,) = orjson.loads(queried.stdout)
    assert match["repo"] == "billing" and match["lines"] >= 15 and "billing/invoices.py" in match["paths"]
    nothing = run(["index", "query", "-", "--config", str(config)], env, input=LEDGER.replace("Ledger", "Book")[:60])
    assert nothing.returncode == 1


def test_policy_eval_shows_the_match(gateway, env) -> None:  # noqa: F811 - the fixture
    _, _, config = gateway
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "What is wrong here?\n" + renamed_excerpt(42, 20)}],
    }
    evaluated = run(
        ["policy", "eval", "--request", "-", "--json", "--config", str(config)], env, input=orjson.dumps(body).decode()
    )
    report = orjson.loads(evaluated.stdout)
    (finding,) = report["findings"]
    assert finding["kind"] == "proprietary_code" and finding["rule"] == "proprietary-code:billing"
    assert report["input"]["code"]["repos"]["billing"]["lines"] >= 15
    assert report["endpoint"] == "own" and report["decision"]["action"] == "reroute"


def test_console_shows_the_indexed_repositories_and_the_requests_that_matched(gateway, clouds, env) -> None:  # noqa: F811
    url, key, config = gateway
    assert claude_code_request(url, key, renamed_excerpt(42, 20), stream=False)
    password = "a long enough password"
    made = run(
        ["admin", "add-user", "ada", "--role", "admin", "--password-stdin", "--config", str(config)],
        env,
        input=password + "\n",
    )
    assert made.returncode == 0, made.stderr
    with httpx.Client(base_url=url, headers={"origin": url}) as browser:
        assert login(browser, "ada", password).status_code == 303
        page = browser.get("/admin/code?days=1")
    assert page.status_code == 200
    rows = {cells[0]: cells for cells in re.findall(r"<tr>(.*?)</tr>", page.text)}
    billing = [r for r in re.findall(r"<tr><td>billing</td>.*?</tr>", page.text)]
    assert len(billing) == 1 and billing[0].endswith("<td>1</td></tr>")  # one request matched
    assert "<td>python-stdlib</td><td>public (subtracted)</td>" in page.text
    assert "tally" not in page.text and rows
