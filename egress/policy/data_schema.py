"""The schema of a policy's settings (`policy.data`): the keys the policy reads, the type of each
value, and which values must come from a vocabulary that the running configuration defines
(finding kinds, rule ids, jurisdiction codes, endpoint names, ...).

Invariant: a setting the policy does not read, or a value it can never match, is refused before
the gateway starts. A typo in `policy.data` would otherwise disable the rule it was meant to
configure, silently, and that rule is one that protects (docs/policy.md, "The settings schema").

The format (YAML or JSON), parsed by `parse_schema`:

    types: {<name>: <node>}     named nodes, used with {ref: <name>}
    root: <node>                the shape of policy.data itself (an object)
    classifications: [a, ...]   optional: the labels the policy reads from input.classifications;
                                policy.client_classifications may then list only these

A node is one of

    {type: string | bool | int | number}
    {type: string, enum: <enumeration>}      a value of one of ENUMERATIONS below
    {type: string, enum: [a, b, ...]}        one of these literal values
    {type: list, items: <node>}
    {type: object, keys: {<key>: <node>}}    closed: any key not listed is refused
    {type: map, values: <node>}              free-form keys (team names), each value a <node>
    {ref: <name>, without: [<key>, ...]}     a named node; for an object, less the keys listed

and any node may carry a `description`. Every key of an object is optional: the policy has a
default for each. The schema is itself checked strictly (an unknown key in it is an error).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from egress.core.jurisdictions import COMMON_MISSPELLINGS

BUNDLED_SCHEMA_FILE = "data_schema.yaml"  # the bundled policy's schema, and a custom policy folder's


@dataclass(frozen=True, slots=True)
class Enumeration:
    noun: str  # one value, in a message: "finding kind"
    about: str  # what the values are, when there are too many to list


# The named enumerations a schema may reference; the configuration supplies their values.
ENUMERATIONS: dict[str, Enumeration] = {
    "kinds": Enumeration("finding kind", "the kinds detectors emit"),
    "confidence_tiers": Enumeration("confidence tier", "certain or likely"),
    "rule_ids": Enumeration(
        "rule id", "the ids of the loaded rule set (bundled, detection.rules, internal identifiers)"
    ),
    "jurisdictions": Enumeration("jurisdiction code", "an ISO 3166-1 alpha-2 code, EU or self"),
    "endpoints": Enumeration("endpoint name", "the names of the configured providers"),
    "classifications": Enumeration("classification", "public, or a label of policy.client_classifications"),
    "obligations": Enumeration("obligation", "the obligations the gateway honours"),
}

_LISTED = 12  # enumerations up to this size are listed in full in a message

SCALARS: dict[str, tuple[type, ...]] = {"string": (str,), "bool": (bool,), "int": (int,), "number": (int, float)}


@dataclass(frozen=True, slots=True)
class Scalar:
    type: str  # a key of SCALARS
    enum: str | None = None  # a key of ENUMERATIONS
    values: tuple[Any, ...] = ()  # literal values; empty: any value of the type
    description: str = ""


@dataclass(frozen=True, slots=True)
class ListOf:
    items: Node
    description: str = ""


@dataclass(frozen=True, slots=True)
class Record:
    keys: Mapping[str, Node]
    description: str = ""


@dataclass(frozen=True, slots=True)
class MapOf:
    values: Node
    description: str = ""


Node = Scalar | ListOf | Record | MapOf


@dataclass(frozen=True, slots=True)
class DataSchema:
    root: Record
    origin: str  # the file it came from, for messages
    # The labels the policy reads from input.classifications; None: the schema does not say.
    classifications: tuple[str, ...] | None = None


class SchemaError(ValueError):
    """A schema file that cannot be used, with the place in it named."""


# --- reading a schema --------------------------------------------------------------------------

_NODE_KEYS = {
    "ref": {"ref", "without", "description"},
    "list": {"type", "items", "description"},
    "object": {"type", "keys", "description"},
    "map": {"type", "values", "description"},
    "scalar": {"type", "enum", "description"},
}


def parse_schema(raw: Any, origin: str) -> DataSchema:
    """A schema from its parsed YAML/JSON document. Raises SchemaError naming the place."""
    if not isinstance(raw, dict):
        raise SchemaError(f"{origin}: the schema must be a mapping with `root` (and optionally `types`)")
    unknown = sorted(set(raw) - {"root", "types", "classifications", "description"})
    if unknown:
        known = "root, types, classifications, description"
        raise SchemaError(f"{origin}: unknown key {unknown[0]!r} (a schema has {known})")
    labels = raw.get("classifications")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(x, str) for x in labels)):
        raise SchemaError(f"{origin}: classifications: a list of the labels the policy reads")
    types = raw.get("types") or {}
    if not isinstance(types, dict):
        raise SchemaError(f"{origin}: types: must be a mapping of names to nodes")
    if "root" not in raw:
        raise SchemaError(f"{origin}: root: required (the shape of policy.data)")
    root = _node(raw["root"], f"{origin}: root", types, ())
    if not isinstance(root, Record):
        raise SchemaError(f"{origin}: root: must be an object node (policy.data is a mapping)")
    for name, node in types.items():  # an unused type must be valid too
        _node(node, f"{origin}: types.{name}", types, (str(name),))
    return DataSchema(root=root, origin=origin, classifications=None if labels is None else tuple(labels))


def _node(raw: Any, where: str, types: Mapping[str, Any], resolving: tuple[str, ...]) -> Node:
    if not isinstance(raw, dict):
        raise SchemaError(f"{where}: a node is a mapping ({{type: ...}} or {{ref: ...}})")
    shape = "ref" if "ref" in raw else raw.get("type")
    if shape in SCALARS:
        shape = "scalar"
    if shape not in _NODE_KEYS:
        known = ", ".join([*SCALARS, "list", "object", "map"])
        raise SchemaError(f"{where}: type: must be one of {known} (or the node a {{ref: <name>}}), not {shape!r}")
    extra = sorted(set(raw) - _NODE_KEYS[shape])
    if extra:
        raise SchemaError(f"{where}: unknown key {extra[0]!r} in a {shape} node")
    description = raw.get("description") or ""
    if shape == "ref":
        return _ref(raw, where, types, resolving)
    if shape == "list":
        return ListOf(items=_node(raw.get("items"), f"{where}.items", types, resolving), description=description)
    if shape == "map":
        return MapOf(values=_node(raw.get("values"), f"{where}.values", types, resolving), description=description)
    if shape == "object":
        keys = raw.get("keys")
        if not isinstance(keys, dict):
            raise SchemaError(f"{where}.keys: must be a mapping of keys to nodes")
        return Record(
            keys={str(k): _node(v, f"{where}.keys.{k}", types, resolving) for k, v in keys.items()},
            description=description,
        )
    enum = raw.get("enum")
    if enum is None:
        return Scalar(type=raw["type"], description=description)
    if isinstance(enum, list):
        return Scalar(type=raw["type"], values=tuple(enum), description=description)
    if enum not in ENUMERATIONS:
        raise SchemaError(f"{where}.enum: unknown enumeration {enum!r} (known: {', '.join(ENUMERATIONS)})")
    if raw["type"] != "string":
        raise SchemaError(f"{where}.enum: the enumeration {enum!r} holds strings: use type: string")
    return Scalar(type="string", enum=enum, description=description)


def _ref(raw: dict[str, Any], where: str, types: Mapping[str, Any], resolving: tuple[str, ...]) -> Node:
    """A named node; with `without`, that object less some keys. A type may refer to itself only
    through `without` that drops the key doing so (settings -> teams -> settings without teams)."""
    name = raw["ref"]
    if name not in types:
        raise SchemaError(f"{where}.ref: no type named {name!r} under types")
    target = types[name]
    without = raw.get("without") or []
    if without:
        if not isinstance(without, list) or not (isinstance(target, dict) and isinstance(target.get("keys"), dict)):
            raise SchemaError(f"{where}.without: a list of keys, for a ref to an object node")
        missing = [k for k in without if k not in target["keys"]]
        if missing:
            raise SchemaError(f"{where}.without: types.{name} has no key {missing[0]!r}")
        target = {**target, "keys": {k: v for k, v in target["keys"].items() if k not in without}}
        if "description" in raw:
            target["description"] = raw["description"]
    step = name if not without else f"{name} without {', '.join(sorted(without))}"
    if step in resolving:
        raise SchemaError(f"{where}.ref: {name!r} refers to itself ({' -> '.join([*resolving, step])})")
    return _node(target, f"{where} (types.{name})", types, (*resolving, step))


# --- checking data against it ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Issue:
    """One way the data does not fit the schema. `path` is inside the data; `at_key`: the key
    itself is wrong (unknown), rather than its value."""

    path: tuple[str | int, ...]
    message: str
    at_key: bool = False


# The values of a named enumeration (see ENUMERATIONS), as the running configuration defines them.
Vocabulary = Callable[[str], frozenset[str]]


def check(schema: DataSchema, data: Any, vocabulary: Vocabulary) -> list[Issue]:
    """Every issue of `data` against `schema`, in document order; [] when it fits."""
    issues: list[Issue] = []
    _check(schema.root, data, (), vocabulary, issues)
    return issues


def check_classifications(schema: DataSchema, labels: Iterable[str]) -> list[Issue]:
    """Labels a client may declare (policy.client_classifications) that the policy never reads:
    a misspelt `proprietary` there drops the header that would have kept code in-house."""
    if schema.classifications is None:
        return []
    reads = ", ".join(schema.classifications) or "none"
    return [
        Issue(
            (i,),
            f"the policy reads no classification {label!r}{did_you_mean(label, schema.classifications)} (it reads: {reads})",
        )
        for i, label in enumerate(labels)
        if label not in schema.classifications
    ]


def _check(node: Node, value: Any, path: tuple[str | int, ...], vocabulary: Vocabulary, issues: list[Issue]) -> None:
    if isinstance(node, Record | MapOf):
        if not isinstance(value, dict):
            issues.append(Issue(path, f"must be a mapping, not {_what(value)}"))
            return
        for key, item in value.items():
            if not isinstance(key, str):
                issues.append(Issue((*path, str(key)), f"a key must be a string, not {_what(key)}", at_key=True))
            elif isinstance(node, MapOf):
                _check(node.values, item, (*path, key), vocabulary, issues)
            elif key in node.keys:
                _check(node.keys[key], item, (*path, key), vocabulary, issues)
            else:
                reads = ", ".join(sorted(node.keys)) or "no keys"
                hint = did_you_mean(key, node.keys)
                issues.append(Issue((*path, key), f"unknown key {key!r}{hint} (the policy reads here: {reads})", True))
    elif isinstance(node, ListOf):
        if not isinstance(value, list):
            issues.append(Issue(path, f"must be a list, not {_what(value)}{_as_list(value)}"))
            return
        for i, item in enumerate(value):
            _check(node.items, item, (*path, i), vocabulary, issues)
    else:
        _check_scalar(node, value, path, vocabulary, issues)


def _check_scalar(
    node: Scalar, value: Any, path: tuple[str | int, ...], vocabulary: Vocabulary, issues: list[Issue]
) -> None:
    wanted = SCALARS[node.type]
    if isinstance(value, bool) and bool not in wanted or not isinstance(value, wanted):
        issues.append(Issue(path, f"must be {_TYPE_WORDS[node.type]}, not {_what(value)}"))
        return
    if node.values and value not in node.values:
        listed = ", ".join(str(v) for v in node.values)
        issues.append(
            Issue(
                path,
                f"{value!r} is not allowed here{did_you_mean(str(value), map(str, node.values))} (allowed: {listed})",
            )
        )
    elif node.enum is not None:
        allowed = vocabulary(node.enum)
        if value not in allowed:
            issues.append(Issue(path, _unknown_value(node.enum, str(value), allowed)))


def _unknown_value(enum: str, value: str, allowed: frozenset[str]) -> str:
    about = ENUMERATIONS[enum]
    hint = ""
    if enum == "jurisdictions" and COMMON_MISSPELLINGS.get(value) in allowed:
        hint = f"; did you mean {COMMON_MISSPELLINGS[value]!r}?"
    elif enum == "jurisdictions" and len(value) == 3 and value.isalpha():
        # Never a spelling guess here: DEU is nearer to EU than to DE, and EU is wider.
        hint = "; a country is written with two letters (DE, not DEU)"
    hint = hint or did_you_mean(value, allowed)
    known = ", ".join(sorted(allowed)) if len(allowed) <= _LISTED else about.about
    return f"unknown {about.noun} {value!r}{hint} (known: {known or 'none'})"


def did_you_mean(value: str, candidates: Iterable[str]) -> str:
    """'; did you mean 'x'?' naming the closest candidate (case first, then spelling), or ''."""
    options = sorted(candidates)
    by_case = {c.casefold(): c for c in options}
    close = (
        [by_case[value.casefold()]] if value.casefold() in by_case else difflib.get_close_matches(value, options, n=1)
    )
    return f"; did you mean {close[0]!r}?" if close else ""


_TYPE_WORDS = {"string": "a string", "bool": "true or false", "int": "an integer", "number": "a number"}


def _what(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"the number {value}"
    return f"the string {value!r}" if isinstance(value, str) else type(value).__name__


def _as_list(value: Any) -> str:
    one = isinstance(value, str | int | float) and not isinstance(value, bool)
    return f"; write [{value}] for a list of one" if one else ""
