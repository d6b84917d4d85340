"""The cached rule set (egress/detect/ruleset_cache.py) is the rule set: nothing lost in JSON."""

from __future__ import annotations

from dataclasses import replace

import pytest

from egress.detect import ruleset_cache
from egress.detect.rules import bundled_files, load_rule_files, load_rules

EXTENDING = """
[extend]
useDefault = true

[[rules]]
id = "acme-key"
regex = '''(acme_[a-z]{12})'''
keywords = ["acme_"]
tags = ["acme"]
severity = "low"
entropy = 2.5

[[rules.allowlists]]
regexTarget = "line"
regexes = ['''fixture''']
stopwords = ["dummy"]

[allowlist]
paths = ['''vendor/''']
"""


def test_round_trip_keeps_every_field():
    for ruleset in (load_rules(bundled_files()), load_rule_files([("own.toml", EXTENDING)])):
        blob = ruleset_cache.dumps(ruleset)
        assert blob is not None
        again = ruleset_cache.loads(blob)
        assert again == ruleset
        assert [type(r.kind) for r in again.rules] == [type(r.kind) for r in ruleset.rules]


def test_a_rule_with_a_code_check_is_not_written():
    ruleset = load_rules(bundled_files())
    checked = replace(ruleset, rules=(replace(ruleset.rules[0], check=lambda *_: True), *ruleset.rules[1:]))
    assert ruleset_cache.dumps(checked) is None


@pytest.mark.parametrize(
    "blob",
    [b"{}", b'{"format": 999}', b'{"format": 1, "version": "", "allowlists": [], "rules": [{"id": "x", "bogus": 1}]}'],
)
def test_a_blob_of_another_format_is_refused(blob):
    with pytest.raises((ValueError, TypeError, KeyError)):
        ruleset_cache.loads(blob)


def test_source_digest_names_the_detection_code():
    assert ruleset_cache.source_digest() == ruleset_cache.source_digest()
    assert len(ruleset_cache.source_digest()) == 64
