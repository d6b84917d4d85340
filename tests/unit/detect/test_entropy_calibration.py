"""Entropy thresholds never drop a real secret: random secrets of every rule's shape are found.

A rule's `entropy` is the Shannon entropy (bits/char) of the whole secret group, prefix
included; a fixed prefix and a short random body make low values common. For each bundled rule
whose secret has a generatable shape (tests/support/secret_shapes.py), SAMPLES seeded random
secrets of each linear shape must all pass the threshold exactly as the engine applies it, and
the lowest-entropy of them, with random others, each in the context of one of the rule's
labelled positives, all joined in one text, must all be reported by the real engine.

The offline Monte-Carlo (bench/entropy_calibration.py, 4M samples per shape at the shortest
length) set the thresholds below 1 miss in a million; CEILINGS pins the thresholds it lowered, so
raising one back fails here even where 20k samples would rarely catch the difference.
"""

from __future__ import annotations

import functools
import random
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.detect.rules import Rule
from egress.detect.validators import shannon_entropy
from tests.support.corpus import bundled_matcher, load_corpus
from tests.support.secret_shapes import NotGeneratable, SecretShapes, Shape, sample, secret_shapes, shortest_samples

MATCHER = bundled_matcher()
SAMPLES = 20_000  # per rule, spread over its linear shapes
# Longer shapes get fewer (a quarter up to MEDIUM characters, a tenth beyond): entropy spreads
# less as length grows, CEILINGS pins the recalibrated ones, and sampling every rule 20k times
# through the engine's own entropy function would take this file well past 20 s on 2 cores.
SHORT = 32
MEDIUM = 48
ENGINE_LOWEST = 30  # the lowest-entropy samples of each rule go through the engine
ENGINE_RANDOM = 10  # and this many others
UNIFORM = 8  # one sample in UNIFORM has a uniformly random length, the others the shortest

# Calibrated ceilings (bench/entropy_calibration.py, docs/detection.md): the rules whose
# threshold dropped more than 1 in a million random secrets, and the threshold that does not.
CEILINGS: dict[str, float] = {
    "alibaba-access-key-id": 2.4,
    "assemblyai-api-key": 2.4,
    "atlassian-legacy-api-token": 3.1,
    "aws-access-key-id": 2.4,
    "aws-secret-access-key": 3.8,
    "azure-openai-api-key-legacy": 2.4,
    "checkout-live-secret-key": 3.2,
    "checkout-secret-key": 3.1,
    "circleci-token-legacy": 2.7,
    "cloudflare-global-api-key": 2.8,
    "datadog-api-key": 2.4,
    "datadog-app-key": 2.7,
    "deepgram-api-key": 2.7,
    "elevenlabs-api-key": 2.4,
    "fireworks-api-key": 3.5,
    "gitea-access-token": 2.7,
    "github-oauth-client-secret": 2.7,
    "honeycomb-api-key": 2.4,
    "huggingface-access-token": 3.8,
    "huggingface-org-token": 4.0,
    "jenkins-api-token": 2.4,
    "jwt": 3.8,
    "launchdarkly-access-token": 2.9,
    "mistral-api-key": 3.6,
    "newrelic-user-api-key": 3.4,
    "octopus-deploy-api-key": 3.3,
    "onepassword-secret-key": 3.3,
    "oracle-oci-auth-token": 3.0,
    "pagerduty-api-key": 2.9,
    "pagerduty-integration-key": 2.4,
    "razorpay-basic-auth-pair": 3.1,
    "razorpay-key-secret": 3.1,
    "render-api-key": 3.7,
    "replicate-api-token": 3.9,
    "scaleway-access-key": 2.7,
    "sonar-token-legacy": 2.7,
    "travis-ci-token": 3.1,
    "vault-recovery-token": 3.5,
    "vault-token-legacy": 3.3,
    "vercel-token-legacy": 3.1,
    "vultr-api-key": 3.4,
    "wandb-api-key": 2.7,
}


def _shapes() -> tuple[list[SecretShapes], list[str]]:
    shapes, skipped = [], []
    for rule in MATCHER.ruleset.rules:
        if rule.entropy is None:
            continue
        try:
            shapes.append(secret_shapes(rule))
        except NotGeneratable:
            skipped.append(rule.id)
    return shapes, skipped


SHAPES, NOT_GENERATABLE = _shapes()
POSITIVES = {e["rule"]: e.get("positives") or [] for e in load_corpus()[0]}


@functools.cache
def _ranked(shapes: tuple[Shape, ...]) -> tuple[tuple[float, str], ...]:
    """Seeded random secrets of these shapes with their entropy as the engine computes it,
    lowest first (rules with the same shapes share them)."""
    return tuple(sorted((shannon_entropy(s), s) for s in _samples(shapes)))


def _samples(shapes: tuple[Shape, ...]) -> list[str]:
    rng = random.Random(f"entropy-calibration {shapes}")
    per_shape = max(1, SAMPLES // len(shapes))
    shortest = min(shape.shortest() for shape in shapes)
    per_shape //= 1 if shortest <= SHORT else 4 if shortest <= MEDIUM else 10
    out: list[str] = []
    for shape in shapes:
        # Most at the shortest length (the worst case: fewer characters, fewer distinct ones),
        # one in UNIFORM uniform over the allowed lengths.
        out += shortest_samples(shape, rng, per_shape - per_shape // UNIFORM)
        out += [sample(shape, rng) for _ in range(per_shape // UNIFORM)]
    return out


def test_most_rules_with_a_threshold_are_calibrated():
    """The shapes this reader cannot generate are generic values and assignments, named here so
    a new vendor rule that falls out of calibration is noticed."""
    assert len(SHAPES) >= 150
    assert all(
        r.startswith(("generic-", "kubernetes-", "kubeconfig-", "jwk-", "npmrc-"))
        or r
        in {
            "aws-session-token-assignment",
            "azure-sas-token",
            "mysql-cli-password",
            "upstash-token",
            "snowflake-credential",
            "docker-registry-auth",
            "composer-bearer-token",
            "artifactory-credential",
            "gradle-repository-password",
            "coinbase-api-secret",
        }
        for r in NOT_GENERATABLE
    ), NOT_GENERATABLE


@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: s.rule_id)
def test_random_secrets_pass_the_entropy_threshold(shapes):
    ranked = _ranked(shapes.shapes)
    below = [s for h, s in ranked if h < shapes.threshold]
    assert below == [], f"{len(below)} of {len(ranked)} random secrets below {shapes.threshold}: {below[:3]}"


def _carrier(rule_id: str, index: int) -> tuple[str, str]:
    """A labelled positive (text, secret) of the rule whose secret occurs once in its text."""
    usable = [(p["text"], p["secret"]) for p in POSITIVES[rule_id] if p["text"].count(p["secret"]) == 1]
    return usable[index % len(usable)]


def test_lowest_entropy_random_secrets_are_found_by_the_engine():
    """One text per rule: its riskiest random secrets, each in a labelled context, one a line."""
    missed: dict[str, list[str]] = {}
    for shapes in SHAPES:
        rule = MATCHER.ruleset.by_id(shapes.rule_id)
        if rule.validator:  # a checksum (github_checksum) no random body passes
            continue
        values = [s for _, s in _ranked(shapes.shapes)]
        rng = random.Random(shapes.rule_id)
        chosen = values[:ENGINE_LOWEST] + rng.sample(values[ENGINE_LOWEST:], ENGINE_RANDOM)
        lines = []
        for i, secret in enumerate(chosen):
            text, labelled = _carrier(rule.id, i)
            lines.append(text.replace(labelled, secret))
        found = {m.secret for m in MATCHER.scan("\n".join(lines)) if m.rule.id == rule.id}
        if lost := [s for s in chosen if s not in found]:
            missed[rule.id] = lost[:3]
    assert missed == {}


def test_aws_access_key_id_with_low_entropy_is_found():
    """A real random key id with entropy 2.94 (it was missed at threshold 3.0)."""
    secret = "AKIAV6PPYYAJVAYYIKAB"
    assert shannon_entropy(secret) < 3.0
    text = f"AWS_ACCESS_KEY_ID={secret}\n"
    assert [(m.rule.id, m.secret) for m in MATCHER.scan(text)] == [("aws-access-key-id", secret)]


@pytest.mark.parametrize("rule_id", sorted(CEILINGS))
def test_calibrated_thresholds_stay_at_or_below_their_ceiling(rule_id):
    rule = MATCHER.ruleset.by_id(rule_id)
    assert rule is not None and rule.entropy is not None
    assert rule.entropy <= CEILINGS[rule_id]


_CHARS = string.ascii_letters + string.digits + "_-."


@st.composite
def _patterns(draw: st.DrawFn) -> str:
    """A secret-group pattern of the generatable kind: literals, classes, bounded repeats, an
    alternation of literals."""
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["literal", "class", "branch"]))
        if kind == "literal":
            parts.append(re.escape(draw(st.text(_CHARS, min_size=1, max_size=5))))
        elif kind == "class":
            chars = draw(st.sets(st.sampled_from(_CHARS), min_size=1, max_size=20))
            lo = draw(st.integers(0, 12))
            hi = draw(st.one_of(st.none(), st.integers(lo, lo + 12)))
            body = "".join(re.escape(c) if c in "-." else c for c in sorted(chars))
            parts.append(f"[{body}]{{{lo},{'' if hi is None else hi}}}")
        else:
            words = draw(st.lists(st.text(_CHARS, min_size=1, max_size=4), min_size=2, max_size=4))
            parts.append("(?:" + "|".join(re.escape(w) for w in words) + ")")
    return "".join(parts)


@settings(max_examples=200, deadline=None)
@given(pattern=_patterns(), seed=st.integers(0, 2**32))
def test_every_sample_is_a_string_of_the_secret_group(pattern, seed):
    """The shape reader and the sampler agree with the regex: each sample matches the group."""
    rule = Rule(id="probe", regex=f"key=({pattern})", secret_group=1, entropy=1.0)
    try:
        shapes = secret_shapes(rule)
    except NotGeneratable:
        return  # an open length range without a literal part: a generic value, not calibrated
    rng = random.Random(seed)
    for shape in shapes.shapes:
        for value in (sample(shape, rng), sample(shape, rng, shortest=True), *shortest_samples(shape, rng, 3)):
            assert re.fullmatch(pattern, value), (pattern, value)
        assert len(sample(shape, rng, shortest=True)) == shape.shortest()
