"""policy.data against the policy's schema: a typo that would switch a protecting rule off is
refused, by `config check` and by `serve` (load_config), naming file, line and key, with a
suggestion. The bundled schema stays in step with the bundled policy and the README's example."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from egress.cli.main import main
from egress.config import ConfigError, load_config, rule_kinds
from egress.core.jurisdictions import ISO_3166_ALPHA2
from egress.detect.rules import load_rule_files
from egress.policy import data_schema

REPO = Path(__file__).resolve().parents[3]
BUNDLE = files("egress") / "policy" / "bundle"

# Line 1 is `providers:`; policy.data's first key is on line 24.
BASE = """\
providers:
  - name: us-cloud
    api: anthropic
    base_url: https://api.anthropic.com
    models: ["claude-*"]
    credentials: {passthrough: true}
    operator: Anthropic, PBC
    jurisdiction: US
    region: us
    retention_days: 30
    trains_on_api_data: false
    dpa: true
  - name: own
    api: openai-chat
    base_url: http://127.0.0.1:9000/v1
    models: ["*"]
    credentials: {passthrough: true}
    operator: ourselves
    jurisdiction: self
    region: office
    retention_days: 0
    trains_on_api_data: false
    dpa: false
detection:
  internal_identifiers:
    codenames: [Nightjar]
policy:
  data:
"""
FIRST = BASE.count("\n") + 1  # the line of the first policy.data key


def write(tmp_path: Path, data: str, base: str = BASE) -> Path:
    path = tmp_path / "egress.yaml"
    path.write_text(base + data)
    return path


def refused(tmp_path: Path, data: str, base: str = BASE) -> list[str]:
    path = write(tmp_path, data, base)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={"HOME": str(tmp_path)})
    return [str(p) for p in info.value.problems]


def accepted(tmp_path: Path, data: str, base: str = BASE):
    return load_config(write(tmp_path, data, base), env={"HOME": str(tmp_path)})


# --- one test per kind of typo ------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path):
    (out,) = refused(tmp_path, "    propietary: {kinds: [internal]}\n")
    assert out.startswith(f"{tmp_path}/egress.yaml:{FIRST}: policy.data.propietary: unknown key 'propietary'")
    assert "did you mean 'proprietary'?" in out


def test_unknown_nested_key_is_named_on_its_own_line(tmp_path):
    (out,) = refused(tmp_path, "    proprietary:\n      kind: [internal]\n")
    assert out.startswith(f"{tmp_path}/egress.yaml:{FIRST + 1}: policy.data.proprietary.kind: unknown key 'kind'")
    assert "did you mean 'kinds'?" in out and "(the policy reads here: kinds, rules)" in out


def test_unknown_kind(tmp_path):
    (out,) = refused(tmp_path, "    proprietary:\n      kinds:\n        - secret\n        - internl\n")
    assert out == (
        f"{tmp_path}/egress.yaml:{FIRST + 3}: policy.data.proprietary.kinds[1]: unknown finding kind 'internl'; "
        "did you mean 'internal'? (known: internal, pii, secret, sensitive_file)"
    )


def test_unknown_rule_id(tmp_path):
    (out,) = refused(tmp_path, "    approval: {rules: [aws-acess-key-id]}\n")
    assert out.startswith(f"{tmp_path}/egress.yaml:{FIRST}: policy.data.approval.rules[0]: unknown rule id")
    assert "did you mean 'aws-access-key-id'?" in out


def test_rule_ids_come_from_the_loaded_rule_set(tmp_path):
    # internal-codename exists because codenames are configured; a custom rule file adds its ids and kinds.
    rules = tmp_path / "ours.toml"
    rules.write_text(
        "[extend]\nuseDefault = true\n\n[[rules]]\nid = \"export-control\"\nregex = '''EAR99-\\d+'''\nkind = \"export\"\n"
    )
    base = BASE.replace("detection:\n", "detection:\n  rules: [ours.toml]\n")
    data = "    proprietary: {kinds: [export], rules: [internal-codename, export-control, aws-access-key-id]}\n"
    config = accepted(tmp_path, data, base)
    assert config.policy.data["proprietary"]["rules"][1] == "export-control"
    # Without codenames there is no internal-codename rule: a finding can never carry that id.
    (out,) = refused(
        tmp_path,
        "    proprietary: {rules: [internal-codename]}\n",
        BASE.replace("codenames: [Nightjar]", "hostnames: [ci-01]"),
    )
    assert "policy.data.proprietary.rules[0]: unknown rule id 'internal-codename'" in out


EXTENDING = """\
[extend]
useDefault = true
disabledRules = ["aws-session-token"]

[[rules]]
id = "export-control"
regex = '''EAR99-\\d+'''
kind = "export"

[[rules]]
id = "aws-access-key-id"
kind = "internal"
"""
REPLACING = """\
[[rules]]
id = "only-one"
regex = '''x'''
"""


@pytest.mark.parametrize("user", [[], [("ext.toml", EXTENDING)], [("rep.toml", REPLACING)]])
def test_rule_ids_read_without_compiling_agree_with_the_loaded_rule_set(user):
    loaded = {r.id: r.kind for r in load_rule_files(user).rules}
    assert rule_kinds(user) == loaded and len(loaded) >= 1


def test_unknown_jurisdiction_code(tmp_path):
    out = refused(tmp_path, "    pii_jurisdictions: [EU, self, de, UK, SW]\n")
    assert [o.split(": ", 2)[1] for o in out] == [
        "policy.data.pii_jurisdictions[2]",
        "policy.data.pii_jurisdictions[3]",
        "policy.data.pii_jurisdictions[4]",
    ]
    assert all(o.startswith(f"{tmp_path}/egress.yaml:{FIRST}: ") for o in out)
    assert "unknown jurisdiction code 'de'; did you mean 'DE'?" in out[0]
    assert "unknown jurisdiction code 'UK'; did you mean 'GB'?" in out[1]
    assert out[2].endswith("unknown jurisdiction code 'SW' (known: an ISO 3166-1 alpha-2 code, EU or self)")


def test_unknown_endpoint_name(tmp_path):
    # The bundled policy reads no endpoint names; a custom policy's schema can.
    custom_policy(tmp_path)
    (out,) = refused(tmp_path, "    preferred: [own, us-clod]\n", with_policy("  files: [policy]\n"))
    assert out == (
        f"{tmp_path}/egress.yaml:{FIRST + 1}: policy.data.preferred[1]: unknown endpoint name 'us-clod'; "
        "did you mean 'us-cloud'? (known: own, us-cloud)"
    )


def test_wrong_type(tmp_path):
    out = refused(tmp_path, "    pii_jurisdictions: EU\n    block_training: 'no'\n    proprietary: [internal]\n")
    assert out == [
        f"{tmp_path}/egress.yaml:{FIRST}: policy.data.pii_jurisdictions: must be a list, not the string 'EU'; "
        "write [EU] for a list of one",
        f"{tmp_path}/egress.yaml:{FIRST + 1}: policy.data.block_training: must be true or false, not the string 'no'",
        f"{tmp_path}/egress.yaml:{FIRST + 2}: policy.data.proprietary: must be a mapping, not a list",
    ]


def test_a_typo_in_a_tier_suggests_the_tier_by_its_name(tmp_path):
    (out,) = refused(tmp_path, "    decisive_tiers: [certan]\n")
    assert out == (
        f"{tmp_path}/egress.yaml:{FIRST}: policy.data.decisive_tiers[0]: unknown confidence tier 'certan'; "
        "did you mean 'certain'? (known: certain, likely)"
    )


def test_typo_inside_a_team_override(tmp_path):
    data = "    teams:\n      research:\n        pii_jurisdiction: [EU]\n        proprietary: {kinds: [internl]}\n"
    out = refused(tmp_path, data)
    assert out[0].startswith(
        f"{tmp_path}/egress.yaml:{FIRST + 2}: policy.data.teams.research.pii_jurisdiction: unknown key"
    )
    assert "did you mean 'pii_jurisdictions'?" in out[0]
    assert out[1].startswith(f"{tmp_path}/egress.yaml:{FIRST + 3}: policy.data.teams.research.proprietary.kinds[0]:")
    assert "did you mean 'internal'?" in out[1]
    # A team's overrides are merged last: `teams` inside a team would never be read.
    (nested,) = refused(tmp_path, "    teams: {research: {teams: {}}}\n")
    assert "policy.data.teams.research.teams: unknown key 'teams'" in nested


def test_unknown_obligation(tmp_path):
    (out,) = refused(tmp_path, "    obligations: [record_payloads]\n")
    assert "unknown obligation 'record_payloads'; did you mean 'record_payload'?" in out


def test_unknown_client_classification(tmp_path):
    # A label the policy never reads would drop the client's x-egress-classification header.
    base = BASE.replace("policy:\n  data:\n", "policy:\n  client_classifications: [propietary]\n  data:\n")
    (out,) = refused(tmp_path, "    shadow: false\n", base)
    assert out == (
        f"{tmp_path}/egress.yaml:{FIRST - 1}: policy.client_classifications[0]: the policy reads no classification "
        "'propietary'; did you mean 'proprietary'? (it reads: proprietary, public)"
    )


def test_a_three_letter_country_is_not_guessed(tmp_path):
    # DEU is nearer to EU than to DE by spelling, and EU would widen where personal data may go.
    (out,) = refused(tmp_path, "    pii_jurisdictions: [DEU]\n")
    assert out.endswith(
        "unknown jurisdiction code 'DEU'; a country is written with two letters (DE, not DEU) "
        "(known: an ISO 3166-1 alpha-2 code, EU or self)"
    )
    assert "did you mean" not in out


def test_every_problem_is_reported_at_once(tmp_path):
    out = refused(tmp_path, "    propietary: {}\n    mask_kinds: [secrets]\n")
    assert [o.split(": ", 2)[1] for o in out] == ["policy.data.propietary", "policy.data.mask_kinds[0]"]


# --- what passes ------------------------------------------------------------------------------


def test_the_bundled_defaults_pass(tmp_path):
    config = load_config(None, env={"HOME": str(tmp_path)})
    assert config.policy.data == {} and config.warnings == ()
    # The policy's own defaults fit its schema, and the schema lists exactly the keys they have.
    schema = bundled_schema()
    defaults = rego_defaults()
    assert data_schema.check(schema, defaults, lambda name: full_vocabulary(tmp_path)(name)) == []
    assert set(schema.root.keys) == set(defaults)


def test_a_full_valid_policy_data_passes(tmp_path):
    data = (
        "    mask_kinds: [secret, pii]\n"
        "    pii_jurisdictions: [EU, self, DE, FR]\n"
        "    pii_requires_dpa: false\n"
        "    block_training: true\n"
        "    proprietary: {kinds: [internal], rules: [internal-codename]}\n"
        "    approval: {kinds: [sensitive_file], rules: []}\n"
        "    obligations: [record_payload]\n"
        "    shadow: false\n"
        "    teams: {research: {pii_jurisdictions: [EU, self], shadow: true, proprietary: {kinds: []}}}\n"
    )
    config = accepted(tmp_path, data)
    assert config.policy.data["teams"]["research"]["shadow"] is True and config.warnings == ()


def readme_example() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"A complete example:\s*```yaml\n(.*?)```", section, re.S)
    assert match, "README.md's Configuration section no longer has its complete example"
    return match.group(1)


def test_the_readme_example_passes_config_check_no_env_without_credentials(tmp_path, monkeypatch):
    example = readme_example()
    assert "policy:" in example and "data:" in example  # the example still exercises policy.data
    path = tmp_path / "egress.yaml"
    path.write_text(example)
    variables = re.findall(r"\{env: ([A-Z_][A-Z0-9_]*)", example)
    assert variables, "the example names credential variables"
    for name in variables:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    result = CliRunner().invoke(main, ["config", "check", "--no-env", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: OK (" in result.output and "error" not in result.output
    assert f"note: not set, not required with --no-env (serve needs them): {', '.join(variables)}" in result.output
    # Without --no-env the same file needs every credential variable, and says which.
    result = CliRunner().invoke(main, ["config", "check", str(path)])
    assert result.exit_code == 2
    assert f"environment variable {variables[0]} is not set" in result.output


def test_no_env_still_checks_the_schema(tmp_path, monkeypatch):
    monkeypatch.delenv("MISSING_KEY", raising=False)
    base = BASE.replace(
        "credentials: {passthrough: true}\n    operator: Anthropic",
        "credentials: {env: MISSING_KEY}\n    operator: Anthropic",
    )
    path = write(tmp_path, "    pii_jurisdictions: [EU, self, Fr]\n", base)
    result = CliRunner().invoke(main, ["config", "check", "--no-env", str(path)])
    assert result.exit_code == 2
    assert (
        f"error: {path}:{FIRST}: policy.data.pii_jurisdictions[2]: unknown jurisdiction code 'Fr'; did you mean 'FR'?"
        in result.output
    )
    assert "MISSING_KEY" not in result.output


# --- custom policies ----------------------------------------------------------------------------

CUSTOM_REGO = """\
package egress

import rego.v1

default user_config := {}

user_config := data.egress_config

decision := {"action": "allow", "endpoints": [c.name | some c in input.candidates], "mask": ["secret"],
             "reasons": [], "obligations": [], "shadow": object.get(user_config, "strict", false)}
"""

CUSTOM_SCHEMA = """\
root:
  type: object
  keys:
    preferred: {type: list, items: {type: string, enum: endpoints}}
    strict: {type: bool}
    level: {type: string, enum: [low, high]}
"""


def custom_policy(tmp_path: Path, schema: str | None = CUSTOM_SCHEMA, schema_name: str = "data_schema.yaml") -> None:
    policy = tmp_path / "policy"
    policy.mkdir(exist_ok=True)
    (policy / "route.rego").write_text(CUSTOM_REGO)
    if schema is not None:
        (policy / schema_name).write_text(schema)


def with_policy(lines: str) -> str:
    return BASE.replace("policy:\n  data:\n", f"policy:\n{lines}  data:\n")


def test_a_custom_policy_is_checked_against_its_own_schema(tmp_path):
    custom_policy(tmp_path)
    base = with_policy("  files: [policy]\n")
    config = accepted(tmp_path, "    preferred: [own]\n    strict: true\n    level: high\n", base)
    assert config.policy.data == {"preferred": ["own"], "strict": True, "level": "high"} and config.warnings == ()
    (out,) = refused(tmp_path, "    strictt: true\n", base)
    assert out.startswith(
        f"{tmp_path}/egress.yaml:{FIRST + 1}: policy.data.strictt: unknown key 'strictt'; did you mean 'strict'?"
    )
    (out,) = refused(tmp_path, "    level: hihg\n", base)
    assert "policy.data.level: 'hihg' is not allowed here; did you mean 'high'? (allowed: low, high)" in out
    # The bundled policy's keys mean nothing to this policy.
    (out,) = refused(tmp_path, "    proprietary: {kinds: [internal]}\n", base)
    assert "policy.data.proprietary: unknown key 'proprietary'" in out


def test_policy_data_schema_names_the_schema_explicitly(tmp_path):
    custom_policy(tmp_path, schema_name="ours.schema.json")
    (tmp_path / "policy" / "ours.schema.json").write_text(json.dumps(yaml.safe_load(CUSTOM_SCHEMA)))
    base = with_policy("  files: [policy/route.rego]\n  data_schema: policy/ours.schema.json\n")
    (out,) = refused(tmp_path, "    strict: 1\n", base)
    assert out == f"{tmp_path}/egress.yaml:{FIRST + 2}: policy.data.strict: must be true or false, not the number 1"


def test_a_broken_schema_is_a_config_error(tmp_path):
    custom_policy(tmp_path, schema="root:\n  type: object\n  keys:\n    tier: {type: string, enum: tiers}\n")
    (out,) = refused(tmp_path, "    tier: gold\n", with_policy("  files: [policy]\n"))
    assert f"{tmp_path}/egress.yaml:{FIRST - 1}: policy.files: the policy data schema:" in out
    assert "unknown enumeration 'tiers'" in out


def test_two_schemas_beside_the_policy_files_or_an_unreadable_one_are_errors(tmp_path):
    custom_policy(tmp_path)
    other = tmp_path / "more"
    other.mkdir()
    (other / "extra.rego").write_text("package extra\n")
    (other / "data_schema.yaml").write_text(CUSTOM_SCHEMA)
    (out,) = refused(tmp_path, "    strict: true\n", with_policy("  files: [policy, more/extra.rego]\n"))
    assert out.startswith(f"{tmp_path}/egress.yaml:{FIRST - 1}: policy.files: several schemas beside the policy files")
    assert out.endswith("name one in policy.data_schema")
    (out,) = refused(tmp_path, "    strict: true\n", with_policy("  files: [policy]\n  data_schema: missing.yaml\n"))
    assert out.startswith(f"{tmp_path}/egress.yaml:{FIRST}: policy.data_schema: cannot read {tmp_path}/missing.yaml")


def test_engine_builtin_says_policy_data_has_no_effect(tmp_path):
    config = accepted(tmp_path, "    proprietary: {kinds: [internal]}\n", with_policy("  engine: builtin\n"))
    assert config.warnings == (
        f"{tmp_path}/egress.yaml:{FIRST}: policy.data: engine builtin reads no policy.data: these settings have no effect",
    )


def test_a_custom_policy_without_a_schema_is_checked_for_syntax_only_and_says_so(tmp_path):
    custom_policy(tmp_path, schema=None)
    path = write(tmp_path, "    anything: [goes]\n", with_policy("  files: [policy]\n"))
    result = CliRunner().invoke(main, ["config", "check", str(path)], env={"HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert (
        f"warning: {path}:{FIRST}: policy.data: checked for YAML syntax only: the custom policy ships no schema "
        "(set policy.data_schema, or put data_schema.yaml beside its .rego files; docs/policy.md)"
    ) in result.output


def test_a_remote_opa_policy_without_a_schema_says_so_too(tmp_path):
    base = with_policy("  engine: opa\n  opa_url: http://127.0.0.1:8181\n")
    config = accepted(tmp_path, "    propietary: {kinds: [internal]}\n", base)
    assert len(config.warnings) == 2
    assert "engine opa does not send policy.data to the OPA server" in config.warnings[0]
    assert "checked for YAML syntax only: the OPA server's policy ships no schema" in config.warnings[1]
    # With policy.data_schema it is checked like any other.
    (tmp_path / "opa.schema.yaml").write_text(CUSTOM_SCHEMA)
    base = with_policy("  engine: opa\n  opa_url: http://127.0.0.1:8181\n  data_schema: opa.schema.yaml\n")
    (out,) = refused(tmp_path, "    preferred: [ownn]\n", base)
    assert "unknown endpoint name 'ownn'; did you mean 'own'?" in out


# --- end to end: the command and serve ----------------------------------------------------------


def egress_command() -> list[str]:
    return [sys.executable, "-m", "egress"]


def test_config_check_command_end_to_end(tmp_path):
    path = write(tmp_path, "    propietary: {kinds: [internal]}\n")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [*egress_command(), "config", "check", str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert (
        f"error: {path}:{FIRST}: policy.data.propietary: unknown key 'propietary'; did you mean 'proprietary'?"
        in done.stdout
    )
    path.write_text(BASE + "    proprietary: {kinds: [internal]}\n")
    done = subprocess.run(
        [*egress_command(), "config", "check", str(path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0 and f"{path}: OK (2 provider endpoints: us-cloud, own)" in done.stdout


def test_serve_refuses_the_typo_before_it_starts(tmp_path):
    path = write(tmp_path, "    proprietary: {kinds: [internl]}\n")
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    command = [*egress_command(), "serve", "--config", str(path), "--port", "0"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    said = " ".join((done.stdout + done.stderr).split())  # the console wraps long lines
    assert "policy.data.proprietary.kinds[0]: unknown finding kind 'internl'; did you mean 'internal'?" in said
    assert not (tmp_path / ".local" / "share" / "egress" / "egress.pid").exists()


# --- the schema stays in step with the policy -----------------------------------------------------


def bundled_schema() -> data_schema.DataSchema:
    return data_schema.parse_schema(yaml.safe_load((BUNDLE / "data_schema.yaml").read_text()), "bundled")


def rego_text() -> str:
    return (BUNDLE / "egress.rego").read_text(encoding="utf-8")


def rego_defaults() -> dict:
    """The `defaults` object of egress.rego (Rego object syntax: JSON with comments and trailing commas)."""
    body = rego_text().split("\ndefaults := ", 1)[1].split("\n}\n", 1)[0] + "\n}"
    body = re.sub(r"#[^\n]*", "", body)
    return json.loads(re.sub(r",(\s*[}\]])", r"\1", body))


def full_vocabulary(tmp_path: Path) -> data_schema.Vocabulary:
    config = load_config(None, env={"HOME": str(tmp_path)})
    return lambda name: {
        "kinds": frozenset({"secret", "pii", "sensitive_file", "internal"}),
        "jurisdictions": ISO_3166_ALPHA2 | {"EU", "self"},
        "obligations": frozenset({"record_payload"}),
        "confidence_tiers": frozenset({"certain", "likely"}),
        "rule_ids": frozenset(),
        "endpoints": frozenset(e.name for e in config.providers),
        "classifications": frozenset({"public", "proprietary"}),
    }[name]


def test_the_schema_covers_every_data_reference_of_the_policy():
    text = re.sub(r"#[^\n]*", "", rego_text())
    # The policy reads its settings from exactly one document, the schema's root.
    assert set(re.findall(r"\bdata\.([A-Za-z_][A-Za-z0-9_]*)", text)) == {"egress_config"}
    # Every classification label it reads is declared.
    labels = set(re.findall(r'"([a-z_]+)" in req\.classifications', text))
    assert labels == {"public", "proprietary"} and labels <= set(bundled_schema().classifications or ())
    # Every settings path it reads (s.<key>..., merged.<key>...) is a path of the schema.
    paths = set(re.findall(r"\b(?:s|merged)\.([a-z_]+(?:\.[a-z_]+)*)", text))
    assert {"proprietary.kinds", "approval.rules", "pii_jurisdictions", "teams"} <= paths
    schema = bundled_schema()
    for path in sorted(paths):
        node: data_schema.Node = schema.root
        for key in path.split("."):
            assert isinstance(node, data_schema.Record) and key in node.keys, (
                f"egress.rego reads {path}; the schema lacks it"
            )
            node = node.keys[key]
    # ...and every key of its defaults, which a team may override, too.
    teams = schema.root.keys["teams"]
    assert isinstance(teams, data_schema.MapOf) and isinstance(teams.values, data_schema.Record)
    assert set(teams.values.keys) == set(rego_defaults()) - {"teams"}


def test_the_bundled_schema_ships_in_package_data():
    package_data = (REPO / "pyproject.toml").read_text()
    assert '"policy/bundle/*.yaml"' in package_data


def test_iso_codes_are_the_assigned_ones():
    assert len(ISO_3166_ALPHA2) == 249 and {"DE", "GB", "GR", "US", "SE", "NO", "IS", "LI"} <= ISO_3166_ALPHA2
    assert not {"UK", "EL", "EU", "XK"} & ISO_3166_ALPHA2


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ({"types": {}}, "root: required"),
        ({"root": {"type": "list", "items": {"type": "string"}}}, "root: must be an object node"),
        (
            {"root": {"type": "object", "keys": {"a": {"type": "str"}}}},
            "type: must be one of string, bool, int, number",
        ),
        ({"root": {"type": "object", "keys": {"a": {"type": "string", "enun": "kinds"}}}}, "unknown key 'enun'"),
        ({"root": {"ref": "s"}, "types": {"s": {"ref": "s"}}}, "'s' refers to itself"),
        ({"root": {"ref": "t"}}, "no type named 't'"),
        ({"root": {"type": "object", "keys": {}}, "classifications": "public"}, "classifications: a list"),
        ({"root": {"type": "object", "keys": {"n": {"type": "int", "enum": "kinds"}}}}, "holds strings"),
    ],
)
def test_schema_format_errors_are_named(schema, message):
    with pytest.raises(data_schema.SchemaError, match=re.escape(message)):
        data_schema.parse_schema(schema, "s.yaml")
