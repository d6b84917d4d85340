"""egress's own inspect stage as a matrix detector: the bundled rules, as `egress scan` runs them."""

from __future__ import annotations

import os

from egress.config import default_cache_dir
from egress.detect.compiled_cache import FileBlobCache
from egress.detect.engine import RuleMatcher
from egress.detect.rules import bundled_files, load_rules
from egress.detect.scan import TextScanner
from tests.corpus.matrix.score import Detection, Detector


def egress_detector() -> Detector:
    """The compiled automaton is cached where egress itself caches it."""
    matcher = RuleMatcher(load_rules(bundled_files()), FileBlobCache(default_cache_dir(os.environ)))
    scanner = TextScanner(matcher, cache_chars=0)

    def detect(text: str) -> list[Detection]:
        return [Detection(f.start, f.end, str(f.tier)) for f in scanner.scan_text(text) if f.kind == "secret"]

    return detect
