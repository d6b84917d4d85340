"""`egress policy test | eval | reload`: the policy as something you can run and inspect."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson
from rich.console import Console

from egress.cli.options import config_option, load_or_exit
from egress.cli.tables import Column, TableSpec, print_rows, resolve_format

if TYPE_CHECKING:
    from egress.core.endpoint import Endpoint
    from egress.core.exchange import Decision, Finding
    from egress.policy.service import PolicyService

# The commands import the policy engine, the scanner and the wire codecs when they run.

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

PID_FILE = "egress.pid"

_APIS = {  # --api: the Api value
    "anthropic": "anthropic.messages",
    "openai-chat": "openai.chat_completions",
    "openai-responses": "openai.responses",
    "openai-completions": "openai.completions",  # editors' autocomplete (legacy completions)
    "mistral-fim": "openai.fim_completions",  # Mistral's fill-in-the-middle (Codestral)
}


class EvalOutcome(IntEnum):
    """`egress policy eval`'s exit status: what the gateway would do with the request, so CI can
    assert a route. Bad input (request, configuration, policy) exits 2, as every command does."""

    FORWARDED = 0  # allowed (possibly masked or rerouted) to an endpoint
    BLOCKED = 3  # the policy blocks it
    HELD = 4  # the policy holds it for an approval
    REFUSED = 5  # the gateway refuses it: no endpoint may take it, or the decision failed


def eval_outcome(action: str | None, endpoint: str | None) -> EvalOutcome:
    """`action` is the decision's (None when deciding failed); `endpoint` the one chosen."""
    if action == "block":
        return EvalOutcome.BLOCKED
    if action == "require_approval":
        return EvalOutcome.HELD
    if action is None or endpoint is None:
        return EvalOutcome.REFUSED
    return EvalOutcome.FORWARDED


@click.group("policy")
def policy_command() -> None:
    """Test, dry-run and reload the sovereignty policy."""


@policy_command.command("test")
@config_option
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("-v", "--verbose", is_flag=True, help="List every test, not only failures.")
def policy_test(config_path: Path | None, paths: tuple[Path, ...], verbose: bool) -> None:
    """Run the Rego unit tests (`test_*` rules of `*_test.rego`) of the configured policy, or of
    the policy files and folders given as PATHS. Exit status 1 when a test fails."""
    # Imported here: `egress policy --help` stays fast.
    from egress.app import policy_data, rego_source
    from egress.policy.rego import PolicyLoadError, RegoPolicy, RegoSource
    from egress.policy.testing import Verdict, run_isolated

    config = load_or_exit(config_path)
    try:
        source = RegoSource.from_paths(paths) if paths else rego_source(config)
        # First, that it loads as the gateway would load it (compiles, decides the probe).
        RegoPolicy(source, policy_data(config), config.policy.query).close()
        results = run_isolated(source, policy_data(config))
    except PolicyLoadError as exc:
        err_console.print(f"[red]policy error[/red] {exc}")
        sys.exit(2)
    if not results:
        err_console.print("[red]no tests found[/red]: add test_* rules to *_test.rego files next to the policy")
        sys.exit(1)
    failed = [r for r in results if r.verdict is not Verdict.PASS]
    for result in results:
        if verbose or result.verdict is not Verdict.PASS:
            colour = {"pass": "green", "fail": "red", "error": "red"}[result.verdict.value]
            line = f"[{colour}]{result.verdict.value.upper():5}[/{colour}] {Path(result.module).name}: {result.name}"
            console.print(line + (f"  ({result.detail})" if result.detail else ""))
    summary = f"{len(results) - len(failed)} passed, {len(failed)} failed"
    console.print(("[red]" if failed else "[green]") + summary)
    sys.exit(1 if failed else 0)


@policy_command.command("eval")
@config_option
@click.option("--request", "request_file", required=True, type=click.File("rb"), help="A request body (JSON); - for stdin.")
@click.option("--api", type=click.Choice(sorted(_APIS)), default=None, help="Its API (default: guessed from the body).")
@click.option(
    "--path",
    "request_path",
    default=None,
    help="The path it is posted to, which names its API (instead of --api) and, for Gemini, its model "
    "(/v1beta/models/gemini-2.5-pro:streamGenerateContent).",
)
@click.option("--user", default="cli", help="The user the policy sees.")
@click.option("--team", default=None, help="The team the policy sees.")
@click.option("--client", default=None, help="The client the policy sees (claude-code, codex, …).")
@click.option("--classification", "classifications", multiple=True, help="A classification label (repeatable).")
@click.option(
    "--caller",
    type=click.Choice(["person", "service_account"]),
    default="person",
    show_default=True,
    help="Who the policy sees asking (input.caller.kind).",
)
@click.option(
    "--credential",
    "credential_header",
    default=None,
    help="The client's own provider credential as a header ('authorization: Bearer sk-ant-oat01-…'), "
    "classified as the gateway does (input.credential).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of tables.")
def policy_eval(
    config_path: Path | None,
    request_file: Any,
    api: str | None,
    request_path: str | None,
    user: str,
    team: str | None,
    client: str | None,
    classifications: tuple[str, ...],
    caller: str,
    credential_header: str | None,
    as_json: bool,
) -> None:
    """Dry-run one request: its findings, the policy input, the decision and the endpoint chosen.
    Nothing is sent anywhere.

    Exit status: 0 forwarded (allowed, masked or rerouted to an endpoint), 3 blocked by the
    policy, 4 held for approval, 5 refused (no endpoint may take it, or the decision failed),
    2 bad request, configuration or policy."""
    # Imported here: `egress policy --help` stays fast.
    from egress.app import build_policy, build_scanner
    from egress.cli.index import indexed_code
    from egress.core.errors import EgressError, ErrorCode
    from egress.core.exchange import Api
    from egress.core.key_scope import CallerKind
    from egress.identity.plans import CredentialClassifier, bundled_plans
    from egress.policy.decide import RequestFacts, policy_input
    from egress.policy.rego import PolicyLoadError
    from egress.route.catalog import Catalog
    from egress.route.model_map import upstream_model
    from egress.wire.apis import APIS, guess_api, route, speaks

    config = load_or_exit(config_path)
    body = request_file.read()
    routed = route(request_path) if request_path is not None else None
    if request_path is not None and routed is None:
        err_console.print(f"[red]--path[/red] {request_path} is no API's path (README, Endpoints)")
        sys.exit(2)
    chosen_api = routed or (Api(_APIS[api]) if api else guess_api(body))
    spec = APIS[chosen_api]
    try:
        parsed = spec.parse_request(chosen_api, body)
        if spec.from_route is not None:  # the model is the path's (Gemini)
            if request_path is None:
                raise EgressError(
                    ErrorCode.INVALID_REQUEST,
                    "this API names the model in the path: give --path /v1beta/models/MODEL:generateContent",
                )
            parsed = spec.from_route(parsed, request_path, "alt=sse")
    except EgressError as exc:
        err_console.print(f"[red]request error[/red] {exc.message}")
        sys.exit(2)
    # Indexed code is looked up as the gateway does (egress index): the match shows as a finding.
    findings = build_scanner(config, code=indexed_code(config)).scan(parsed.prompt)
    catalog = Catalog(config.providers)
    candidates = catalog.candidates(chosen_api, parsed.model)
    credential = None
    if credential_header is not None:
        name, colon, value = credential_header.partition(":")
        if not colon:
            err_console.print("[red]--credential[/red] takes a header: 'name: value'")
            sys.exit(2)
        header = [(name.strip().lower().encode("latin-1"), value.strip().encode("latin-1"))]
        credential = CredentialClassifier(bundled_plans()).classify(header, "", None)
    facts = RequestFacts(
        chosen_api.value,
        parsed.model,
        parsed.stream,
        user,
        team,
        client,
        None,
        classifications,
        caller_kind=CallerKind(caller),
        auth_method="cli",
        credential=credential,
    )
    translated = frozenset(e.name for e in candidates if not speaks(e.api, chosen_api))
    models = {e.name: upstream_model(e, parsed.model) for e in candidates}  # as the gateway does
    document = policy_input(facts, findings, candidates, translated, models)
    try:
        service = build_policy(config)
    except PolicyLoadError as exc:
        err_console.print(f"[red]policy error[/red] {exc}")
        sys.exit(2)
    try:
        decision: Decision | None = asyncio.run(_decide_once(service, document, candidates))
        error = None
    except EgressError as exc:
        decision, error = None, exc
    finally:
        service.close()
    chosen = decision.endpoints[0] if decision and decision.endpoints and decision.action.value != "block" else None
    outcome = eval_outcome(decision.action.value if decision else None, chosen)
    report = {
        "api": chosen_api.value,
        "findings": [_finding(f, parsed.prompt.segments[f.segment].path) for f in findings],
        "input": document,
        "decision": _decision(decision) if decision else None,
        "error": {"code": error.code.value, "message": error.message} if error else None,
        "endpoint": chosen,
        "translated": chosen in translated if chosen else False,
        "policy_revision": service.revision,
        "outcome": outcome.name.lower(),
    }
    if as_json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _print_report(report)
    sys.exit(outcome)


@policy_command.command("reload")
@config_option
def policy_reload(config_path: Path | None) -> None:
    """Tell the running gateway (same data directory) to reload its policy (SIGHUP)."""
    config = load_or_exit(config_path)
    pid_file = config.resolved_data_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (OSError, ValueError) as exc:
        err_console.print(f"[red]cannot signal the gateway[/red] via {pid_file}: {exc}")
        sys.exit(2)
    console.print(f"sent SIGHUP to egress (pid {pid}); its log says which policy revision is active")


async def _decide_once(service: PolicyService, document: dict[str, Any], candidates: tuple[Endpoint, ...]) -> Decision:
    try:
        return await service.decide(document, candidates, "dec_cli")
    finally:
        await service.engine.aclose()


def _finding(f: Finding, path: tuple[str | int, ...]) -> dict[str, Any]:
    return {
        "kind": f.kind,
        "rule": f.rule_id,
        "severity": f.severity,
        "where": "/".join(str(p) for p in path),
        "offset": f.start,
        "preview": f.preview,
    }


def _decision(d: Decision) -> dict[str, Any]:
    return {
        "action": d.action.value,
        "endpoints": list(d.endpoints),
        "mask": list(d.mask_kinds),
        "reasons": list(d.reasons),
        "obligations": list(d.obligations),
        "shadow": _decision(d.shadow_of) if d.shadow_of else None,
    }


def _print_report(report: dict[str, Any]) -> None:
    spec = TableSpec(
        (
            Column("kind", "kind"),
            Column("rule", "rule"),
            Column("severity", "severity", drop=2),
            Column("where", "where", drop=1),
            Column("preview", "preview", drop=3),
        ),
        title=f"Findings ({len(report['findings'])})",
    )
    rows = [(f["kind"], f["rule"], f["severity"], f["where"], f["preview"]) for f in report["findings"]]
    print_rows(spec, rows, resolve_format("auto", False))
    console.print("[bold]Policy input[/bold]")
    console.print(orjson.dumps(report["input"], option=orjson.OPT_INDENT_2).decode())
    console.print(f"[bold]Policy[/bold] {report['policy_revision']}")
    if report["error"]:
        console.print(f"[red]Refused[/red] ({report['error']['code']}): {report['error']['message']}")
        return
    decision = report["decision"]
    console.print(f"[bold]Decision[/bold] {decision['action']}  allowed: {', '.join(decision['endpoints']) or '(none)'}")
    console.print(f"  mask: {', '.join(decision['mask']) or '(nothing)'}")
    for reason in decision["reasons"]:
        console.print(f"  - {reason}")
    if report["endpoint"]:
        via = " (through API translation)" if report["translated"] else ""
        console.print(f"[bold]Endpoint[/bold] {report['endpoint']}{via}")
    else:
        console.print("[bold]Endpoint[/bold] none: the request would be refused")
