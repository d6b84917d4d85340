"""`egress policy eval`'s exit status from the decision (docs/ci.md documents the codes)."""

from __future__ import annotations

import pytest

from egress.cli.policy import EvalOutcome, eval_outcome


@pytest.mark.parametrize(
    ("action", "endpoint", "outcome", "status"),
    [
        ("allow", "us-cloud", EvalOutcome.FORWARDED, 0),
        ("mask", "us-cloud", EvalOutcome.FORWARDED, 0),
        ("reroute", "eu-cloud", EvalOutcome.FORWARDED, 0),
        ("block", None, EvalOutcome.BLOCKED, 3),
        ("require_approval", "us-cloud", EvalOutcome.HELD, 4),
        ("allow", None, EvalOutcome.REFUSED, 5),  # no endpoint may take it
        (None, None, EvalOutcome.REFUSED, 5),  # the decision failed (fail closed)
    ],
)
def test_exit_status_says_what_the_gateway_would_do(action, endpoint, outcome, status):
    assert eval_outcome(action, endpoint) is outcome
    assert int(outcome) == status


def test_the_codes_are_distinct_and_leave_2_for_bad_input():
    codes = [int(o) for o in EvalOutcome]
    assert len(set(codes)) == len(codes) and 2 not in codes and 1 not in codes
