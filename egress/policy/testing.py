"""Rego unit tests: every `test_*` rule of the `*_test.rego` modules must evaluate to true.

The tests run in a child process (`python -m egress.policy.testing`), one JSON line per result,
so that an engine crash on one test is reported as that test's failure instead of taking the
command down with it (regopy is a native library).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from egress.policy.rego import PolicyLoadError, RegoSource, new_interpreter

_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)", re.MULTILINE)
_TEST = re.compile(r"^(test_\w+)\b", re.MULTILINE)
_WITH = re.compile(r"\bwith\s+(input|data)\b")
WITH_HINT = (
    "regopy (1.5) crashes on `with input as …` / `with data… as …` over rules that use other rules: "
    "write tests as calls of the policy's functions, as the bundled egress_test.rego does"
)


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class TestResult:
    module: str
    name: str
    verdict: Verdict
    detail: str = ""


def discover(source: RegoSource) -> list[tuple[str, str, str]]:
    """(module file, package, rule name) of every test, in file order, each name once."""
    found: list[tuple[str, str, str]] = []
    for name, text in source.tests:
        package = _PACKAGE.search(text)
        if package is None:
            continue
        seen: set[str] = set()
        for rule in _TEST.findall(text):
            if rule not in seen:
                seen.add(rule)
                found.append((name, package.group(1), rule))
    return found


def judge(output: str) -> tuple[Verdict, str]:
    """A test passes only if its rule is exactly `true`; undefined or false is a failure."""
    if output == '{"expressions":[true]}':
        return Verdict.PASS, ""
    if output == "undefined" or output.startswith('{"expressions":[false]}'):
        return Verdict.FAIL, "the test's conditions do not all hold"
    return Verdict.ERROR, output.strip().splitlines()[0][:300] if output.strip() else "no answer"


def run_isolated(source: RegoSource, data: dict[str, Any], timeout_s: float = 300.0) -> list[TestResult]:
    """Run the tests in a child process. A test that crashes or hangs the engine is an ERROR,
    and the run goes on from the next test in a fresh child."""
    expected = discover(source)
    results: list[TestResult] = []
    while len(results) < len(expected):
        start = len(results)
        request = json.dumps({"modules": source.modules, "tests": source.tests, "data": data, "start": start})
        try:
            done = subprocess.run(
                [sys.executable, "-m", "egress.policy.testing"],
                input=request,
                capture_output=True,
                text=True,
                timeout=timeout_s,
                check=False,
            )
            lines, code, stderr = done.stdout.splitlines(), done.returncode, done.stderr
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            lines, code, stderr = out.splitlines(), None, f"no answer within {timeout_s:g} s"
        if code == 2:
            raise PolicyLoadError(stderr.strip() or "the policy does not load")
        results.extend(_result(json.loads(line)) for line in lines if line.startswith("{"))
        if len(results) < len(expected):
            module, _, rule = expected[len(results)]
            why = f"the Rego engine stopped on this test ({_ending(code, stderr)})"
            if any(_WITH.search(text) for _, text in source.tests):
                why += f"; {WITH_HINT}"
            results.append(TestResult(module, rule, Verdict.ERROR, why))
    return results


def _ending(code: int | None, stderr: str) -> str:
    if code is None:
        return stderr
    if code < 0:
        return f"killed by signal {-code}"
    tail = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    return f"exit status {code}" + (f": {tail[:200]}" if tail else "")


def _result(doc: dict[str, Any]) -> TestResult:
    return TestResult(doc["module"], doc["name"], Verdict(doc["verdict"]), doc.get("detail", ""))


def _child() -> int:
    request = json.loads(sys.stdin.read())
    source = RegoSource(
        modules=tuple((n, t) for n, t in request["modules"]), tests=tuple((n, t) for n, t in request["tests"])
    )
    try:
        interpreter = new_interpreter(source, request["data"], with_tests=True)
    except PolicyLoadError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    for module, package, rule in discover(source)[request["start"] :]:
        verdict, detail = judge(str(interpreter.query(f"data.{package}.{rule}")))
        print(json.dumps({"module": module, "name": rule, "verdict": verdict.value, "detail": detail}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child())
