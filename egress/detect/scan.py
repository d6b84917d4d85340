"""The inspect stage: every text segment of a prompt in, findings out. Pure: no I/O.

The detectors themselves (secrets, personal data, sensitive files, internal identifiers) plug in
behind `Detector`; a scanner with no detectors finds nothing, which is what the default
configuration has until detectors are configured.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from egress.core.exchange import Finding, Prompt


class Detector(Protocol):
    def find(self, segment_index: int, text: str) -> list[Finding]: ...


class Scanner:
    def __init__(self, detectors: Sequence[Detector] = ()) -> None:
        self._detectors = tuple(detectors)

    def scan(self, prompt: Prompt) -> tuple[Finding, ...]:
        if not self._detectors:
            return ()
        findings: list[Finding] = []
        for index, segment in enumerate(prompt.segments):
            for detector in self._detectors:
                findings.extend(detector.find(index, segment.text))
        return tuple(findings)
