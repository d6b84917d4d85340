"""The `egress` executable's root command: every command is imported when it runs.

`egress --version` and `egress --help` import click and this module only; the configuration
loader (pydantic, the detection rules, the OIDC client) and the gateway are loaded by the
commands that need them (egress.cli.main is the same group for in-process use).
"""

from __future__ import annotations

import click

from egress.cli.lazy import LazyCommand, LazyGroup

COMMANDS = {
    "serve": LazyCommand("egress.cli.main", "serve", "Run the gateway."),
    "keys": LazyCommand("egress.cli.keys", "keys", "Gateway keys: who may use the gateway."),
    "audit": LazyCommand("egress.cli.audit", "audit", "The tamper-evident audit log."),
    "config": LazyCommand("egress.cli.config", "config_group", "Configuration files."),
    "scan": LazyCommand("egress.cli.scan", "scan_command", "Scan files or a git diff for secrets and personal data."),
    "providers": LazyCommand(
        "egress.cli.providers", "providers_command", "The provider catalog and the configured endpoints."
    ),
    "policy": LazyCommand("egress.cli.policy", "policy_command", "Test, dry-run and reload the sovereignty policy."),
    "approvals": LazyCommand("egress.cli.approvals", "approvals_command", "Requests held for an approver."),
    "admin": LazyCommand("egress.cli.admin", "admin_command", "Console accounts: who may sign in to /admin."),
    "index": LazyCommand("egress.cli.index", "index_command", "Fingerprint the organisation's repositories."),
    "demo": LazyCommand("egress.cli.demo", "demo_command", "Masking, restoration and routing on a built-in simulator."),
    "siem": LazyCommand("egress.cli.siem", "siem_command", "Audit delivery to SIEMs: status, verify a copy."),
    "usage": LazyCommand("egress.cli.usage", "usage_command", "Requests, tokens and spend against the limits."),
    "report": LazyCommand(
        "egress.cli.report", "report_command", "The compliance pack for a period (JSON, HTML, PDF), and its check."
    ),
    "lockdown": LazyCommand(
        "egress.cli.lockdown", "lockdown_command", "Network lock-down: no way to the providers but through the gateway."
    ),
}


@click.group(cls=LazyGroup, lazy=COMMANDS)
@click.version_option(package_name="egress")
def main() -> None:
    """egress: decide where your code may go when developers use AI coding agents."""
