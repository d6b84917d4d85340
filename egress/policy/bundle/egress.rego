# egress's bundled default sovereignty policy.
#
# Input: the versioned document of docs/policy.md (input.version 2). Output:
# data.egress.decision = {action, endpoints, mask, reasons, obligations}.
#
# Its settings are data, not code: `policy.data` in the egress configuration arrives here as
# data.egress_config, merged over `defaults` below (and, for a team, `teams.<team>` over that).
#
# Invariant: rules only refuse candidates. An endpoint is allowed when no rule refuses it, so a
# fact that is missing or unknown can only narrow what is allowed (fail closed).
#
# Style: every rule is a function of (candidate, request, settings) rather than of `input`, so
# the unit tests in egress_test.rego call them directly (regopy does not evaluate `with input as`
# reliably for rules that depend on other rules).
package egress

import rego.v1

defaults := {
	# Finding kinds masked wherever the request goes. Secrets are always among them.
	"mask_kinds": ["secret"],
	# Where personal data may go: the EU and its member states, the other EEA states, and self.
	"pii_jurisdictions": [
		"EU", "self",
		"AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT",
		"LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
	],
	# Personal data only to operators with a data processing agreement (self-hosted needs none).
	"pii_requires_dpa": true,
	# Providers that train on API data receive only requests classified public.
	"block_training": true,
	# Credentials whose plan (input.credential.plan: a client's own credential forwarded by a
	# pass-through endpoint) is one of these are treated like providers that train on data:
	# only requests classified public may leave on them. Consumer plans (a person's Claude,
	# ChatGPT or Google sign-in) allow training on what is sent.
	"public_only_plans": ["consumer"],
	# Service accounts (CI pipelines: input.caller.kind) send indexed code, or anything
	# classified proprietary, to self-hosted endpoints only, whatever proprietary_code's
	# thresholds (which are for people at a keyboard). Off: pipelines are treated like people.
	"service_account_code_self_hosted": true,
	# The proprietary-code hook: requests classified proprietary, or with findings of these
	# kinds or rules, go to self-hosted endpoints only.
	"proprietary": {"kinds": [], "rules": []},
	# Indexed code (`egress index`, input.code): a request carrying at least `min_lines` matched
	# lines of one repository, or matched code making up `min_share` of one text, is proprietary.
	"proprietary_code": {"min_lines": 8, "min_share": 0.3},
	# Findings that need a person's approval before the request may leave.
	"approval": {"kinds": [], "rules": []},
	# Obligations attached to every decision (e.g. "record_payload").
	"obligations": [],
	# The confidence tiers whose findings may block, hold or reroute a request (every tier is
	# masked): `likely` findings (generic credentials, near-miss vendor tokens, encoded ones)
	# decide only where the organisation adds "likely" here.
	"decisive_tiers": ["certain"],
	# Shadow mode for a rollout: decisions are recorded, not enforced.
	"shadow": false,
	# Per-team overrides of any key above: {"<team>": {...}}.
	"teams": {},
}

default user_config := {}

user_config := data.egress_config

decision := decide(input, settings(input, user_config))

# --- settings -------------------------------------------------------------------------------

settings(req, cfg) := object.union(merged, object.get(merged.teams, team_of(req), {})) if {
	merged := object.union(defaults, cfg)
}

team_of(req) := req.subject.team if is_string(req.subject.team)

team_of(req) := "" if not is_string(req.subject.team)

# --- what the request carries ---------------------------------------------------------------

found(req, kind) if req.findings.kinds[kind] > 0

# Found in a tier that decides. An input without per-tier counts counts every finding (fail closed).
decisive(req, s, kind) if {
	some tier in s.decisive_tiers
	req.findings.by_tier[tier].kinds[kind] > 0
}

decisive(req, _, kind) if {
	not req.findings.by_tier
	found(req, kind)
}

decisive_rule(req, s, rule) if {
	some tier in s.decisive_tiers
	req.findings.by_tier[tier].rules[rule] > 0
}

decisive_rule(req, _, rule) if {
	not req.findings.by_tier
	req.findings.rules[rule] > 0
}

# Found and sent in clear: kinds the decision masks never leave.
leaves(req, s, kind) if {
	decisive(req, s, kind)
	masked := mask_kinds(s)
	not kind in masked
}

public(req) if "public" in req.classifications

proprietary(req, s) if "proprietary" in req.classifications

proprietary(req, s) if {
	some kind in s.proprietary.kinds
	decisive(req, s, kind)
}

proprietary(req, s) if {
	some rule in s.proprietary.rules
	decisive_rule(req, s, rule)
}

proprietary(req, s) if {
	some _, matched in object.get(object.get(req, "code", {}), "repos", {})
	matched.lines >= s.proprietary_code.min_lines
}

proprietary(req, s) if {
	some _, matched in object.get(object.get(req, "code", {}), "repos", {})
	matched.share >= s.proprietary_code.min_share
}

caller_kind(req) := object.get(object.get(req, "caller", {}), "kind", "person")

# The terms of the client's own credential; an input without them reads as unknown.
plan_of(req) := object.get(object.get(req, "credential", {}), "plan", "unknown")

credential_type(req) := text(object.get(object.get(req, "credential", {}), "type", null))

# Any indexed code at all, or a proprietary label: what a pipeline keeps at home.
carries_code(req) if "proprietary" in req.classifications

carries_code(req) if object.get(object.get(req, "code", {}), "lines", 0) > 0

needs_approval(req, s) if {
	some kind in s.approval.kinds
	decisive(req, s, kind)
}

needs_approval(req, s) if {
	some rule in s.approval.rules
	decisive_rule(req, s, rule)
}

# --- the rules: why a candidate endpoint is refused ------------------------------------------

# Unknown or missing jurisdiction: never.
refuse_jurisdiction(c, _, _) := concat("", [c.name, ": jurisdiction ", text(object.get(c, "jurisdiction", null)), " is unknown"]) if {
	not regex.match(`^([A-Z]{2}|EU|self)$`, text(object.get(c, "jurisdiction", null)))
}

# Providers that train on API data (or do not say) never receive non-public content.
refuse_training(c, req, s) := concat("", [c.name, ": trains on API data and the request is not public"]) if {
	s.block_training
	not public(req)
	not c.trains_on_api_data == false
}

# Personal data only to the allowed jurisdictions (masked personal data does not leave at all).
refuse_pii_jurisdiction(c, req, s) := concat("", [c.name, ": personal data may not go to ", text(object.get(c, "jurisdiction", null))]) if {
	leaves(req, s, "pii")
	not c.jurisdiction in s.pii_jurisdictions
}

# Personal data only to operators with a DPA, unless the endpoint is our own.
refuse_pii_dpa(c, req, s) := concat("", [c.name, ": personal data needs a data processing agreement"]) if {
	leaves(req, s, "pii")
	s.pii_requires_dpa
	not c.self_hosted == true
	not c.dpa == true
}

# Proprietary code only to self-hosted endpoints.
refuse_proprietary(c, req, s) := concat("", [c.name, ": proprietary code goes to self-hosted endpoints only"]) if {
	proprietary(req, s)
	not c.self_hosted == true
}

# A consumer-plan credential is forwarded only with public requests. A candidate that uses the
# organisation's own credential (passthrough false) is not affected; one that does not say is.
refuse_plan(c, req, s) := concat("", [
	c.name, ": the request carries a ", plan_of(req), "-plan credential (", credential_type(req),
	") whose terms let the provider train on what is sent, and the request is not classified public;",
	" use an API key, or an endpoint that uses the organisation's own key",
]) if {
	plan_of(req) in s.public_only_plans
	not public(req)
	not c.passthrough == false
}

# A service account's code stays on self-hosted endpoints.
refuse_pipeline_code(c, req, s) := concat("", [c.name, ": a service account (pipeline) sends code to self-hosted endpoints only"]) if {
	s.service_account_code_self_hosted
	caller_kind(req) == "service_account"
	carries_code(req)
	not c.self_hosted == true
}

# Every rule's reason, in a fixed order; [] when none refuses the candidate.
refusals(c, req, s) := array.concat(
	array.concat(
		array.concat(
			[why | why := refuse_jurisdiction(c, req, s)],
			[why | why := refuse_training(c, req, s)],
		),
		[why | why := refuse_plan(c, req, s)],
	),
	array.concat(
		array.concat(
			[why | why := refuse_pii_jurisdiction(c, req, s)],
			[why | why := refuse_pii_dpa(c, req, s)],
		),
		array.concat(
			[why | why := refuse_proprietary(c, req, s)],
			[why | why := refuse_pipeline_code(c, req, s)],
		),
	),
)

text(x) := x if is_string(x)

text(x) := "(missing)" if not is_string(x)

# --- the decision ---------------------------------------------------------------------------

allowed(req, s) := [c.name | some c in req.candidates; refusals(c, req, s) == []]

mask_kinds(s) := s.mask_kinds if "secret" in s.mask_kinds

mask_kinds(s) := array.concat(["secret"], s.mask_kinds) if not "secret" in s.mask_kinds

masked_found(req, s) := sort([kind | some kind in mask_kinds(s); found(req, kind)])

approval(req, s) := true if needs_approval(req, s)

approval(req, s) := false if not needs_approval(req, s)

preferred(req) := req.candidates[0].name if count(req.candidates) > 0

preferred(req) := "" if count(req.candidates) == 0

# The action, strongest first: block > require_approval > reroute > mask > allow.
action(ok, _, _, _) := "block" if ok == []

action(ok, _, true, _) := "require_approval" if ok != []

action(ok, first, false, _) := "reroute" if {
	ok != []
	ok[0] != first
}

action(ok, first, false, masked) := "mask" if {
	ok != []
	ok[0] == first
	masked != []
}

action(ok, first, false, []) := "allow" if {
	ok != []
	ok[0] == first
}

summary(ok, held, masked) := array.concat(
	array.concat(
		["no candidate endpoint is compliant for this request" | ok == []],
		[concat("", ["masking ", concat(", ", masked)]) | masked != []],
	),
	["a finding requires approval before the request may leave" | held],
)

decide(req, s) := {
	"action": action(ok, preferred(req), held, masked),
	"endpoints": ok,
	"mask": mask_kinds(s),
	"reasons": array.concat(sort([why | some j in judged; some why in j.why]), summary(ok, held, masked)),
	"obligations": s.obligations,
	"shadow": s.shadow,
} if {
	judged := [{"name": c.name, "why": refusals(c, req, s)} | some c in req.candidates]
	ok := [j.name | some j in judged; j.why == []]
	held := approval(req, s)
	masked := masked_found(req, s)
}
