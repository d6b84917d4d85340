"""How `egress audit verify` reports what it proved: the breaks it found, the summary line, the
anchor's view and, for a filtered export, the records' membership in the signed log.

Exit status 1 when the report is not OK (after printing it)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from egress.audit.orphans import OrphanEgress
    from egress.audit.verify import AnchorCheck, AuditReport, Membership


def print_verify(report: AuditReport, what: str, elapsed: float, live: bool) -> None:
    chain = report.chain
    for brk in report.breaks:
        rid = f" (request {brk.request_id})" if brk.request_id else ""
        click.echo(f"BROKEN at record {brk.seq}{rid}: {brk.reason}.")
    anchor = report.anchor
    for problem in anchor.problems[:_SHOWN] if anchor else ():
        click.echo(f"BROKEN anchor: {problem}.")
    if anchor and len(anchor.problems) > _SHOWN:
        click.echo(f"BROKEN anchor: … and {len(anchor.problems) - _SHOWN} more problems.")
    signed = f"records 1..{report.covered_seq} signed" if report.covered_seq else "none covering a record"
    if chain.ok and chain.last_seq > report.covered_seq and live:
        # Not an error (the next checkpoint comes within checkpoint_interval_s), but an auditor
        # should know which records only the chain protects.
        signed += f"; records {report.covered_seq + 1}..{chain.last_seq} not covered by a checkpoint yet"
    summary = (
        f"{chain.checked} {what} verified in {elapsed:.2f} s; "
        f"{report.checkpoints_verified} checkpoints verified ({signed}); head {chain.last_hash}"
    )
    if live:
        summary += f"; uncovered tail: {report.uncovered} records"
    if report.membership is not None:
        _print_membership(report.membership, chain.checked, report.checkpoints_verified)
    click.echo(f"{'OK' if report.ok else 'FAILED'}: {summary}")
    if anchor is not None:
        _print_anchor(anchor)
    elif live:
        click.echo("WARNING: not compared against a checkpoint anchor (--no-anchor).")
    if report.membership is None:  # a filtered export may leave a request's own record out
        _print_orphans(report.orphans, live)
    if not report.ok:
        sys.exit(1)


_SHOWN = 20  # anchor problems printed; the rest are counted


def _print_anchor(anchor: AnchorCheck) -> None:
    """After the summary: what the anchor vouches for, and the database's checkpoints it lacks (a
    warning); its problems are printed before the summary, with the other breaks."""
    if not anchor.exists:
        click.echo("(`egress audit verify --no-anchor` verifies the database alone, knowingly.)")
        return
    newest = f"records 1..{anchor.newest.seq} (head {anchor.newest.hash})" if anchor.newest else "no record"
    click.echo(f"Anchor {anchor.path}: {anchor.anchored} checkpoints; the newest vouches for {newest}.")
    if anchor.not_anchored:
        seqs = [cp.seq for cp in anchor.not_anchored]
        click.echo(
            f"WARNING: {len(seqs)} checkpoints in the database (records {seqs[0]}..{seqs[-1]}) are not in "
            "this anchor: signed by a gateway with another anchor, before the anchor existed, or while "
            "appending to it failed. They are checked against the chain and the key, but deleting them "
            "would go unnoticed here."
        )


def _print_orphans(orphans: tuple[OrphanEgress, ...], live: bool) -> None:
    """Information, not a failure: requests whose egress records have no own record after them."""
    if not orphans:
        return
    records = sum(o.attempts for o in orphans)
    still = " still in flight (this store is live), or" if live else ""
    click.echo(
        f"Orphan egress records: {len(orphans)} requests ({records} egress records) have a write-ahead "
        f"egress record but no outcome record: their bodies left or may have left, and the requests were"
        f"{still} cut off before the gateway recorded how they ended (the gateway killed or stopped)."
    )
    for o in orphans[:_SHOWN]:
        attempts = f"{o.attempts} attempts" if o.attempts > 1 else "1 attempt"
        click.echo(f"  request {o.request_id}: {attempts}, last egress record {o.last_seq}")
    if len(orphans) > _SHOWN:
        click.echo(f"  … and {len(orphans) - _SHOWN} more requests.")


def _print_membership(m: Membership, checked: int, checkpoints: int) -> None:
    """What a filtered export proves about its records' membership in the signed log."""
    click.echo(
        f"Records checked: {checked}; {m.proven} proven members of the signed log (inclusion proof to "
        f"a signed checkpoint's Merkle root); {m.not_yet_covered} not yet covered by a signed checkpoint; "
        f"{checkpoints} checkpoints verified."
    )
    if m.not_yet_covered:
        click.echo(
            f"WARNING: {m.not_yet_covered} records are not yet covered by a signed checkpoint, so their "
            "membership is not proven. The gateway signs one at most audit.checkpoint_interval_s after a "
            "record: export them again later."
        )
    if m.v1_only:
        click.echo(
            f"WARNING: {m.v1_only} records are covered only by version 1 checkpoints (no Merkle root), so "
            "their membership cannot be proven by a filtered export: verify a complete export for them."
        )
    click.echo("Note: a filtered export cannot prove that its filter selected every matching record.")
