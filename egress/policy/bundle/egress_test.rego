# Unit tests of the bundled default policy: `egress policy test` runs every `test_` rule here
# (and in the *_test.rego files of a configured policy). Tests call the policy's functions with
# a request and settings instead of overriding `input` (regopy mis-evaluates `with input as`).
package egress_test

import rego.v1

import data.egress

us := {"name": "us-cloud", "jurisdiction": "US", "trains_on_api_data": false, "dpa": true, "self_hosted": false}

eu := {"name": "eu-cloud", "jurisdiction": "FR", "trains_on_api_data": false, "dpa": true, "self_hosted": false}

eu_no_dpa := {"name": "eu-nodpa", "jurisdiction": "DE", "trains_on_api_data": false, "dpa": false, "self_hosted": false}

own := {"name": "own", "jurisdiction": "self", "trains_on_api_data": false, "dpa": false, "self_hosted": true}

trainer := {"name": "trainer", "jurisdiction": "US", "trains_on_api_data": true, "dpa": true, "self_hosted": false}

cn := {"name": "cn-cloud", "jurisdiction": "CN", "trains_on_api_data": false, "dpa": false, "self_hosted": false}

decide(req, cfg) := egress.decide(req, egress.settings(req, cfg))

request(kinds, rules, classes, candidates) := {
	"version": 2,
	"request": {"api": "anthropic.messages", "model": "claude-x", "stream": true},
	"subject": {"user": "dev", "team": "eng"},
	"findings": {"kinds": kinds, "rules": rules},
	"classifications": classes,
	"candidates": candidates,
}

# Clean code goes to the preferred endpoint unchanged.
test_clean_request_allowed_everywhere if {
	d := decide(request({}, {}, [], [us, eu, own]), {})
	d.action == "allow"
	d.endpoints == ["us-cloud", "eu-cloud", "own"]
}

# Secrets are masked wherever the request goes.
test_secret_is_masked if {
	d := decide(request({"secret": 2}, {"aws-access-key-id": 2}, [], [us, eu]), {})
	d.action == "mask"
	d.endpoints == ["us-cloud", "eu-cloud"]
	"secret" in d.mask
}

# Secrets stay in the mask list even when the configuration forgets them.
test_secret_always_masked_even_if_configured_away if {
	d := decide(request({"secret": 1}, {}, [], [us]), {"mask_kinds": ["pii"]})
	d.action == "mask"
	"secret" in d.mask
	"pii" in d.mask
}

# Personal data: only EU/EEA or self, and only with a DPA.
test_pii_rerouted_away_from_us if {
	d := decide(request({"pii": 1}, {"pii-email": 1}, [], [us, eu, own]), {})
	d.action == "reroute"
	d.endpoints == ["eu-cloud", "own"]
	"us-cloud: personal data may not go to US" in d.reasons
}

test_pii_needs_dpa_except_self if {
	d := decide(request({"pii": 1}, {}, [], [eu_no_dpa, own]), {})
	d.endpoints == ["own"]
	"eu-nodpa: personal data needs a data processing agreement" in d.reasons
}

test_pii_with_only_us_is_blocked if {
	d := decide(request({"pii": 1}, {}, [], [us, cn]), {})
	d.action == "block"
	d.endpoints == []
	"no candidate endpoint is compliant for this request" in d.reasons
}

test_pii_jurisdictions_configurable_per_team if {
	d := decide(request({"pii": 1}, {}, [], [us, eu]), {"teams": {"eng": {"pii_jurisdictions": ["US", "FR"]}}})
	d.endpoints == ["us-cloud", "eu-cloud"]
}

test_team_override_applies_only_to_that_team if {
	doc := object.union(request({"pii": 1}, {}, [], [us, eu]), {"subject": {"user": "x", "team": "sales"}})
	d := decide(doc, {"teams": {"eng": {"pii_jurisdictions": ["US"]}}})
	d.endpoints == ["eu-cloud"]
}

# Providers that train on API data receive public content only.
test_trainer_refused_for_non_public if {
	d := decide(request({}, {}, [], [trainer, eu]), {})
	d.endpoints == ["eu-cloud"]
	d.action == "reroute"
}

test_trainer_allowed_for_public if {
	d := decide(request({}, {}, ["public"], [trainer, eu]), {})
	d.endpoints == ["trainer", "eu-cloud"]
}

test_trainer_missing_fact_is_refused if {
	unknown := {"name": "vague", "jurisdiction": "US", "dpa": true, "self_hosted": false}
	d := decide(request({}, {}, [], [unknown, eu]), {})
	d.endpoints == ["eu-cloud"]
}

# Unknown or missing jurisdiction: never.
test_unknown_jurisdiction_blocked if {
	odd := {"name": "odd", "jurisdiction": "Atlantis", "trains_on_api_data": false, "dpa": true, "self_hosted": false}
	d := decide(request({}, {}, [], [odd]), {})
	d.action == "block"
	"odd: jurisdiction Atlantis is unknown" in d.reasons
}

test_missing_jurisdiction_blocked if {
	none := {"name": "none", "trains_on_api_data": false, "dpa": true, "self_hosted": false}
	d := decide(request({}, {}, [], [none, eu]), {})
	d.endpoints == ["eu-cloud"]
	"none: jurisdiction (missing) is unknown" in d.reasons
}

# The proprietary-code hook: self-hosted only.
test_proprietary_classification_goes_to_self if {
	d := decide(request({}, {}, ["proprietary"], [us, eu, own]), {})
	d.endpoints == ["own"]
	d.action == "reroute"
}

test_proprietary_by_finding_kind if {
	d := decide(request({"internal": 3}, {}, [], [us, own]), {"proprietary": {"kinds": ["internal"], "rules": []}})
	d.endpoints == ["own"]
}

test_proprietary_by_rule if {
	d := decide(request({"internal": 1}, {"internal-codename": 1}, [], [us, own]), {"proprietary": {"kinds": [], "rules": ["internal-codename"]}})
	d.endpoints == ["own"]
}

test_proprietary_without_self_blocked if {
	d := decide(request({}, {}, ["proprietary"], [us, eu]), {})
	d.action == "block"
}

code_request(lines, share, candidates) := object.union(
	request({"proprietary_code": 1}, {"proprietary-code:payments": 1}, [], candidates),
	{"code": {"repos": {"payments": {"lines": lines, "share": share, "segments": 1}}, "lines": lines, "share": share}},
)

# Indexed code: enough matched lines, or a large enough share of a text, goes to self only.
test_indexed_code_lines_go_to_self_only if {
	d := decide(code_request(12, 0.05, [us, eu, own]), {})
	d.action == "reroute"
	d.endpoints == ["own"]
}

test_indexed_code_share_goes_to_self_only if {
	d := decide(code_request(4, 0.5, [us, own]), {})
	d.endpoints == ["own"]
}

test_indexed_code_below_thresholds_is_not_proprietary if {
	d := decide(code_request(4, 0.1, [us, own]), {})
	d.action == "allow"
	d.endpoints == ["us-cloud", "own"]
}

test_indexed_code_thresholds_are_settings if {
	d := decide(code_request(12, 0.05, [us, own]), {"proprietary_code": {"min_lines": 20, "min_share": 0.9}})
	d.endpoints == ["us-cloud", "own"]
}

test_indexed_code_without_self_blocked if {
	d := decide(code_request(30, 1, [us, eu]), {})
	d.action == "block"
}

test_internal_findings_not_proprietary_by_default if {
	d := decide(request({"internal": 1}, {}, [], [us]), {})
	d.action == "allow"
}

# Approval hook.
test_approval_required_for_configured_rule if {
	d := decide(request({"secret": 1}, {"private-key-pem": 1}, [], [us]), {"approval": {"kinds": [], "rules": ["private-key-pem"]}})
	d.action == "require_approval"
	d.endpoints == ["us-cloud"]
}

test_approval_not_required_when_rule_absent if {
	d := decide(request({"secret": 1}, {"aws-access-key-id": 1}, [], [us]), {"approval": {"kinds": [], "rules": ["private-key-pem"]}})
	d.action == "mask"
}

# Obligations come from data.
test_obligations_from_config if {
	d := decide(request({}, {}, [], [us]), {"obligations": ["record_payload"]})
	d.obligations == ["record_payload"]
}

# No candidates at all: block, never an empty allow.
test_no_candidates_blocked if {
	d := decide(request({}, {}, [], []), {})
	d.action == "block"
}

# A team of null (a gateway key without a team) takes the organisation's settings.
test_no_team_takes_defaults if {
	doc := object.union(request({"pii": 1}, {}, [], [us, eu]), {"subject": {"user": "x", "team": null}})
	d := decide(doc, {"teams": {"eng": {"pii_jurisdictions": ["US"]}}})
	d.endpoints == ["eu-cloud"]
}

# Each refusal rule on its own.
test_rule_jurisdiction if {
	egress.refuse_jurisdiction({"name": "x", "jurisdiction": "us"}, {}, {}) == "x: jurisdiction us is unknown"
	not egress.refuse_jurisdiction(eu, {}, {})
}

test_rule_training if {
	s := egress.settings(request({}, {}, [], []), {})
	egress.refuse_training(trainer, request({}, {}, [], []), s)
	not egress.refuse_training(trainer, request({}, {}, ["public"], []), s)
	not egress.refuse_training(trainer, request({}, {}, [], []), egress.settings(request({}, {}, [], []), {"block_training": false}))
}

test_rule_pii_dpa_self_exempt if {
	req := request({"pii": 1}, {}, [], [])
	s := egress.settings(req, {})
	not egress.refuse_pii_dpa(own, req, s)
	egress.refuse_pii_dpa(eu_no_dpa, req, s)
	not egress.refuse_pii_dpa(eu_no_dpa, req, egress.settings(req, {"pii_requires_dpa": false}))
}


# Masked personal data does not leave: any jurisdiction may then serve the request.
test_masked_pii_may_go_anywhere if {
	d := decide(request({"pii": 1}, {}, [], [us, eu]), {"mask_kinds": ["secret", "pii"]})
	d.action == "mask"
	d.endpoints == ["us-cloud", "eu-cloud"]
	"masking pii" in d.reasons
}

# Shadow mode per team, for a staged rollout.
test_shadow_per_team if {
	d := decide(request({}, {}, [], [us]), {"teams": {"eng": {"shadow": true}}})
	d.shadow == true
	e := decide(request({}, {}, [], [us]), {})
	e.shadow == false
}

# --- confidence tiers --------------------------------------------------------------------------

tiered(certain_kinds, likely_kinds, likely_rules) := {
	"version": 2,
	"request": {"api": "anthropic.messages", "model": "m", "stream": false},
	"subject": {"user": "u", "team": null},
	"findings": {
		"kinds": object.union(certain_kinds, likely_kinds), "rules": likely_rules,
		"by_tier": {"certain": {"kinds": certain_kinds, "rules": {}}, "likely": {"kinds": likely_kinds, "rules": likely_rules}},
	},
	"classifications": [],
	"candidates": [{"name": "us", "jurisdiction": "US", "trains_on_api_data": false, "dpa": true, "self_hosted": false}],
}

test_likely_findings_are_masked_but_do_not_hold if {
	d := decide(tiered({}, {"secret": 2}, {"generic-secret-quoted": 2}), {"approval": {"kinds": ["secret"], "rules": []}})
	d.action == "mask"
	"secret" in d.mask
}

test_certain_findings_hold if {
	d := decide(tiered({"secret": 1}, {}, {}), {"approval": {"kinds": ["secret"], "rules": []}})
	d.action == "require_approval"
}

test_likely_findings_hold_where_the_settings_say_so if {
	cfg := {"approval": {"kinds": [], "rules": ["generic-secret-quoted"]}, "decisive_tiers": ["certain", "likely"]}
	d := decide(tiered({}, {"secret": 1}, {"generic-secret-quoted": 1}), cfg)
	d.action == "require_approval"
}

test_an_input_without_tiers_counts_every_finding if {
	d := decide(request({"secret": 1}, {}, [], [us]), {"approval": {"kinds": ["secret"], "rules": []}})
	d.action == "require_approval"
}

# --- credential plans (input.credential.plan) and callers (input.caller) -------------------

# A cloud endpoint that forwards the client's own credential, and one that uses the organisation's.
pass := {"name": "pass", "jurisdiction": "US", "trains_on_api_data": false, "dpa": true, "self_hosted": false, "passthrough": true}

org := {"name": "org", "jurisdiction": "US", "trains_on_api_data": false, "dpa": true, "self_hosted": false, "passthrough": false}

with_credential(req, plan) := object.union(req, {"credential": {"plan": plan, "type": "sample_type"}})

with_caller(req, kind) := object.union(req, {"caller": {"kind": kind, "scope": {"apis": [], "models": [], "endpoints": []}}})

plan_refused(d, name) if {
	some why in d.reasons
	startswith(why, concat("", [name, ": the request carries a consumer-plan credential"]))
}

# Consumer plan × each data class: only public requests leave on the client's own credential.
test_consumer_plan_public_request_leaves if {
	d := decide(with_credential(request({}, {}, ["public"], [pass, org]), "consumer"), {})
	d.action == "allow"
	d.endpoints == ["pass", "org"]
}

test_consumer_plan_unclassified_request_only_on_the_organisations_key if {
	d := decide(with_credential(request({}, {}, [], [pass, org]), "consumer"), {})
	d.action == "reroute"
	d.endpoints == ["org"]
	plan_refused(d, "pass")
	some why in d.reasons
	contains(why, "use an API key")
}

test_consumer_plan_proprietary_request_blocked if {
	d := decide(with_credential(request({}, {}, ["proprietary"], [pass]), "consumer"), {})
	d.action == "block"
	plan_refused(d, "pass")
}

# A candidate that does not say whether it forwards the client's credential is assumed to.
test_consumer_plan_candidate_without_passthrough_fact_refused if {
	d := decide(with_credential(request({}, {}, [], [us]), "consumer"), {})
	d.action == "block"
	plan_refused(d, "us-cloud")
}

# API, enterprise and unknown plans × each data class: the plan rule never refuses.
test_other_plans_never_refused_for_their_plan if {
	every plan in ["api", "enterprise", "unknown"] {
		every classes in [["public"], [], ["proprietary"]] {
			d := decide(with_credential(request({}, {}, classes, [pass, own]), plan), {})
			not plan_refused(d, "pass")
		}
	}
}

test_api_plan_unclassified_allowed if {
	d := decide(with_credential(request({}, {}, [], [pass]), "api"), {})
	d.action == "allow"
}

test_api_plan_proprietary_only_self_hosted if {
	d := decide(with_credential(request({}, {}, ["proprietary"], [pass, own]), "api"), {})
	d.endpoints == ["own"]
}

# The plan list is data: an organisation may add unknown credentials to it, or empty it.
test_public_only_plans_is_data if {
	d := decide(with_credential(request({}, {}, [], [pass]), "unknown"), {"public_only_plans": ["consumer", "unknown"]})
	d.action == "block"
	d2 := decide(with_credential(request({}, {}, [], [pass]), "consumer"), {"public_only_plans": []})
	d2.action == "allow"
}

# An input without credential facts (an older egress) reads as unknown: not refused by default.
test_missing_credential_reads_unknown if {
	egress.plan_of(request({}, {}, [], [])) == "unknown"
}

# Pipelines: indexed code, or a proprietary label, goes to self-hosted endpoints only.
test_service_account_code_stays_self_hosted if {
	req := object.union(with_caller(request({}, {}, [], [us, own]), "service_account"), {"code": {"repos": {}, "lines": 2, "share": 0.01}})
	d := decide(req, {})
	d.endpoints == ["own"]
	some why in d.reasons
	contains(why, "a service account (pipeline) sends code to self-hosted endpoints only")
}

# The same request from a person is under the people's thresholds (2 lines is below them).
test_person_with_little_code_goes_to_cloud if {
	req := object.union(with_caller(request({}, {}, [], [us, own]), "person"), {"code": {"repos": {}, "lines": 2, "share": 0.01}})
	d := decide(req, {})
	d.endpoints == ["us-cloud", "own"]
}

test_service_account_without_code_goes_to_cloud if {
	d := decide(with_caller(request({}, {}, [], [us, own]), "service_account"), {})
	d.endpoints == ["us-cloud", "own"]
}

test_service_account_rule_can_be_switched_off if {
	req := object.union(with_caller(request({}, {}, [], [us]), "service_account"), {"code": {"repos": {}, "lines": 2, "share": 0.01}})
	d := decide(req, {"service_account_code_self_hosted": false})
	d.endpoints == ["us-cloud"]
}
