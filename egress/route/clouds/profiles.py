"""Bedrock cross-region inference profiles: where a profile's requests may be served.

A model id with a geography prefix (`eu.anthropic.claude-...`) is an inference profile: Bedrock
picks the destination region per request, anywhere in the profile's geography, not only the
endpoint's region. The policy weighs an endpoint's `jurisdiction`, so an endpoint that sends a
profile id must declare the jurisdiction of the profile's geography: `check_endpoint` refuses the
configuration otherwise, and refuses profiles whose geography spans several jurisdictions
(`apac.`, `global.`): no one jurisdiction would tell the policy the truth about them.

Facts from AWS's geographic cross-region inference documentation (seen 2026); see docs/clouds.md
for the caveats (AWS's "EU" geography lists London and Zurich as source regions too).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from egress.core.endpoint import Endpoint, WireApi


@dataclass(frozen=True, slots=True)
class Geography:
    prefix: str
    jurisdictions: tuple[str, ...]  # where a request may be served (ISO 3166 alpha-2, or EU)
    regions: str  # in words, for messages and docs


GEOGRAPHIES: dict[str, Geography] = {
    g.prefix: g
    for g in (
        Geography("us", ("US",), "US commercial regions"),
        Geography("us-gov", ("US",), "AWS GovCloud (US)"),
        Geography("eu", ("EU",), "EU regions (Frankfurt, Ireland, Paris, Stockholm, Milan, Spain)"),
        Geography("jp", ("JP",), "Tokyo and Osaka"),
        Geography("au", ("AU",), "Sydney and Melbourne"),
        Geography("apac", ("JP", "KR", "IN", "SG", "AU", "ID"), "Asia-Pacific regions"),
        Geography("global", ("*",), "any commercial region worldwide"),
    )
}


def geography(model_id: str) -> Geography | None:
    """The profile geography of a Bedrock model id, None for a base model id (one region).

    An ARN names the profile after `inference-profile/`; an application profile's ARN
    (`application-inference-profile/...`) names no geography and is treated as None here."""
    name = model_id.rsplit("inference-profile/", 1)[-1] if model_id.startswith("arn:") else model_id
    prefix, dot, rest = name.partition(".")
    if not dot or not rest:
        return None
    return GEOGRAPHIES.get(prefix)


def profile_problem(endpoint: Endpoint, model_id: str) -> str | None:
    """Why `endpoint` may not send `model_id`, or None when it may."""
    geo = geography(model_id)
    if geo is None:
        return None
    if len(geo.jurisdictions) != 1:
        return (
            f"endpoint {endpoint.name!r}: inference profile {model_id!r} may be served in {geo.regions} "
            f"({', '.join(geo.jurisdictions)}), not in one jurisdiction; use a geography profile (eu., us., jp., au.) "
            "or a base model id"
        )
    if geo.jurisdictions[0] != endpoint.jurisdiction:
        return (
            f"endpoint {endpoint.name!r} declares jurisdiction {endpoint.jurisdiction} but inference profile "
            f"{model_id!r} is served in {geo.regions} ({geo.jurisdictions[0]}): set `jurisdiction: "
            f"{geo.jurisdictions[0]}` or map to a model id of that geography"
        )
    return None


def check_endpoints(endpoints: Iterable[Endpoint]) -> None:
    """Raises ValueError naming every Bedrock endpoint whose mapped model ids leave its jurisdiction."""
    problems = [
        problem
        for e in endpoints
        if e.api is WireApi.BEDROCK
        for model_id in (*e.model_map.values(), *((e.upstream_model,) if e.upstream_model else ()), *e.listed_models())
        if (problem := profile_problem(e, model_id)) is not None
    ]
    if problems:
        raise ValueError("; ".join(problems))
