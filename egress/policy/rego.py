"""The in-process Rego engine (regopy): the policy compiled once, evaluated off the event loop.

Invariants:
- a policy that does not compile, or whose probe evaluation fails, never becomes the active one
  (start-up fails; a reload keeps the previous policy);
- the interpreter is used by one thread only (regopy is not thread-safe): every evaluation runs on
  the engine's own single worker thread;
- the revision is a digest of the modules, the data and the query, so a decision cached under it
  can never be served for another policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.resources
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

# RE2 is loaded before regopy, whatever imports this module first: with regopy's native library
# loaded first, compiling some of the detection rules under google-re2 aborts the process.
import re2  # noqa: F401, I001 - load order only
import regopy

from egress.policy.settings import DEFAULT_QUERY

DATA_ROOT = "egress_config"  # the configuration's policy data arrives as data.egress_config


# The simplest request: nothing found, nothing to choose from. Every policy must decide it.
PROBE_INPUT: dict[str, Any] = {
    "version": 2,
    "request": {"api": "probe", "model": "probe", "stream": False, "client": None, "session_id": None},
    "subject": {"user": None, "team": None},
    "findings": {"total": 0, "kinds": {}, "severities": {}, "rules": {}},
    "classifications": [],
    "candidates": [],
}


class PolicyLoadError(Exception):
    """The policy could not be read or compiled; the message says which file and why."""


@dataclass(frozen=True, slots=True)
class RegoSource:
    """The modules of one policy: (file name, text) pairs, tests excluded."""

    modules: tuple[tuple[str, str], ...]
    tests: tuple[tuple[str, str], ...] = ()

    @classmethod
    def bundled(cls) -> RegoSource:
        folder = importlib.resources.files("egress") / "policy" / "bundle"
        return cls(
            modules=(("egress.rego", (folder / "egress.rego").read_text(encoding="utf-8")),),
            tests=(("egress_test.rego", (folder / "egress_test.rego").read_text(encoding="utf-8")),),
        )

    @classmethod
    def from_paths(cls, paths: Sequence[Path]) -> RegoSource:
        """`.rego` files, or folders of them; `*_test.rego` files are tests, not policy."""
        files: list[Path] = []
        for path in paths:
            if path.is_dir():
                files.extend(sorted(path.rglob("*.rego")))
            else:
                files.append(path)
        modules: list[tuple[str, str]] = []
        tests: list[tuple[str, str]] = []
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise PolicyLoadError(f"{file}: cannot read the policy file ({exc})") from None
            (tests if file.name.endswith("_test.rego") else modules).append((str(file), text))
        if not modules:
            raise PolicyLoadError(f"no .rego policy modules in {', '.join(str(p) for p in paths)}")
        return cls(tuple(modules), tuple(tests))


def revision_of(source: RegoSource, data: dict[str, Any], query: str) -> str:
    digest = hashlib.sha256()
    for name, text in source.modules:
        digest.update(Path(name).name.encode() + b"\0" + text.encode() + b"\0")
    digest.update(orjson.dumps(data, option=orjson.OPT_SORT_KEYS) + b"\0" + query.encode())
    return "rego:" + digest.hexdigest()[:16]


def new_interpreter(source: RegoSource, data: dict[str, Any], with_tests: bool = False) -> regopy.Interpreter:
    interpreter = regopy.Interpreter()
    for name, text in source.modules + (source.tests if with_tests else ()):
        try:
            interpreter.add_module(Path(name).name, text)
        except regopy.RegoError as exc:
            raise PolicyLoadError(_readable(str(exc), name, text)) from None
    interpreter.add_data({DATA_ROOT: data})
    return interpreter


class RegoPolicy:
    """One compiled policy. Build a new one to reload; the old one keeps serving until swapped."""

    def __init__(self, source: RegoSource, data: dict[str, Any], query: str = DEFAULT_QUERY) -> None:
        self.query = query
        self.revision = revision_of(source, data, query)
        self._interpreter = new_interpreter(source, data)
        bundle = self._interpreter.build(query)
        if not bundle.ok():
            raise PolicyLoadError(f"the policy does not compile for {query}: {_bundle_error(bundle)}")
        self._bundle = bundle
        self._probe()
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egress-rego")

    def _probe(self) -> None:
        """A policy that cannot decide the simplest request is not loaded."""
        try:
            answer = self.evaluate_now(PROBE_INPUT)
        except PolicyEvaluationError as exc:
            raise PolicyLoadError(f"the policy cannot decide a request without candidates: {exc}") from None
        if not isinstance(answer, dict):
            raise PolicyLoadError(f"{self.query} must be an object; the policy returned {type(answer).__name__}")

    def evaluate_now(self, document: dict[str, Any]) -> Any:
        """Evaluate on the calling thread. Only for the CLI and for the engine's own thread."""
        self._interpreter.set_input(regopy.Input(document))
        output = self._interpreter.query_bundle(self._bundle)
        text = str(output)
        if not output.ok():
            raise PolicyEvaluationError(f"the policy failed: {_first_line(text)}")
        if text == "undefined":
            raise PolicyEvaluationError("the policy's decision is undefined for this input")
        try:
            return _only_expression(orjson.loads(text))
        except orjson.JSONDecodeError:
            raise PolicyEvaluationError(f"the policy's answer is not JSON: {_first_line(text)}") from None

    async def evaluate(self, document: dict[str, Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._thread, self.evaluate_now, document)

    async def aclose(self) -> None:
        """Nothing lives on the event loop: the interpreter has its own thread."""

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)


class PolicyEvaluationError(Exception):
    """The engine ran and failed (a Rego runtime error, an undefined decision)."""


def _only_expression(result: Any) -> Any:
    """regopy answers {"expressions": [value]} for a defined query, `undefined` otherwise."""
    if not isinstance(result, dict) or not isinstance(result.get("expressions"), list):
        raise PolicyEvaluationError("the policy's decision is undefined for this input")
    expressions = result["expressions"]
    if len(expressions) != 1:
        raise PolicyEvaluationError("the policy's query returned more than one value")
    return expressions[0]


_ERROR = re.compile(r"\(error \d+:([^|]*)\|(\d+)\|\d+\s*\(errormsg \d+:([^)]*)\)")


def _readable(raw: str, name: str, text: str) -> str:
    """regopy reports errors as an AST dump; say `file:line:column: message` instead."""
    found = []
    for _, offset, message in _ERROR.findall(raw):
        line = text.count("\n", 0, int(offset)) + 1
        column = int(offset) - (text.rfind("\n", 0, int(offset)) + 1) + 1
        found.append(f"{name}:{line}:{column}: {message.strip()}")
    return "; ".join(found) if found else f"{name}: {_first_line(raw)}"


def _bundle_error(bundle: regopy.Bundle) -> str:
    return _first_line(str(bundle.node.json() if bundle.node is not None else "unknown error"))


def _first_line(text: str, limit: int = 300) -> str:
    return text.strip().splitlines()[0][:limit] if text.strip() else "(no detail)"
