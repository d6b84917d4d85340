"""Terraform (HCL) for the clouds' own egress controls.

- `aws/main.tf`: the gateway's security group (clients in; out only to the configured endpoints'
  published ranges, or to port 443 where a vendor publishes none, names then enforced by the
  firewall) and an AWS Network Firewall policy with two domain-list rule groups: from the gateway's
  subnets only the configured endpoints' names (allowlist), from the client networks no provider
  name at all (denylist).
- `gcp/main.tf`: a Cloud NGFW network firewall policy: the gateway's service account may reach the
  configured endpoints' names (FQDN objects) on 443; every provider name and published range is
  denied to everything else; a VPC firewall rule admits clients to the gateway.

Written so that python-hcl2 parses it and checkov finds nothing to fail (tests hold both true).
"""

from __future__ import annotations

import json

from egress.lockdown.hosts import LockdownPlan, ProviderHost
from egress.lockdown.render import Artifact, header

NOTE_AWS = (
    "Attach aws_networkfirewall_firewall_policy.egress_lockdown to the Network Firewall your VPC routes "
    "egress through. Domain lists match TLS SNI and HTTP Host: a *.pattern becomes a .domain target."
)
NOTE_GCP = (
    "Cloud NGFW FQDN objects take exact names (no wildcards): *.patterns are covered only by the names "
    "the catalog also lists and by published ranges."
)


def render(plan: LockdownPlan) -> list[Artifact]:
    return [Artifact("aws/main.tf", _aws(plan)), Artifact("gcp/main.tf", _gcp(plan))]


def _aws(plan: LockdownPlan) -> str:
    gateway = plan.settings.gateway
    allowed = [h for h in plan.gateway_hosts if not h.is_literal]
    denied = [h for h in plan.blocked_for_clients if not h.is_literal]
    published = sorted({str(n) for h in plan.gateway_hosts for n in plan.addresses(h) if n.version == 4})
    published_v6 = sorted({str(n) for h in plan.gateway_hosts for n in plan.addresses(h) if n.version == 6})
    unpublished = [h.name for h in plan.gateway_hosts if not plan.addresses(h)]
    ports = sorted({h.port for h in plan.gateway_hosts}) or [443]
    out = [header(plan, "terraform (AWS)", notes=[NOTE_AWS])]
    out.append(
        """terraform {
  required_version = ">= 1.5"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "vpc_id" {
  type        = string
  description = "The VPC the gateway runs in"
}

variable "gateway_subnet_cidrs" {
  type        = list(string)
  description = "The subnets of the gateway's instances or pods"
}

variable "client_cidrs" {
  type        = list(string)
  description = "Developer and CI networks: they reach the gateway, and no provider"
}

variable "kms_key_arn" {
  type        = string
  description = "The customer-managed KMS key that encrypts the firewall rule groups and policy"
}
"""
    )
    out.append(
        f"""
locals {{
  gateway_domains  = {_list([_domain(h) for h in allowed])}
  provider_domains = {_list([_domain(h) for h in denied])}
}}

resource "aws_security_group" "egress_gateway" {{
  # checkov:skip=CKV2_AWS_5: attached below by aws_network_interface_sg_attachment, which the check does not follow
  name        = "egress-gateway"
  description = "egress gateway: clients in, the configured endpoints out"
  vpc_id      = var.vpc_id

  ingress {{
    description = "Developer and CI clients to the gateway"
    from_port   = {gateway.port}
    to_port     = {gateway.port}
    protocol    = "tcp"
    cidr_blocks = var.client_cidrs
  }}
"""
    )
    for port in ports:
        if published or published_v6:
            out.append(
                f"""
  egress {{
    description      = "The configured endpoints' published ranges"
    from_port        = {port}
    to_port          = {port}
    protocol         = "tcp"
    cidr_blocks      = {_list(published)}
    ipv6_cidr_blocks = {_list(published_v6)}
  }}
"""
            )
        if unpublished:
            out.append(
                f"""
  egress {{
    description = "Endpoints with no published ranges; names enforced by the Network Firewall"
    from_port   = {port}
    to_port     = {port}
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }}
"""
            )
    out.append(
        """
  egress {
    description = "DNS inside the VPC"
    from_port   = 53
    to_port     = 53
    protocol    = "udp"
    cidr_blocks = var.gateway_subnet_cidrs
  }
}
"""
    )
    out.append(
        _aws_rule_group(
            "gateway_endpoints",
            "egress-gateway-endpoints",
            "ALLOWLIST",
            "local.gateway_domains",
            "var.gateway_subnet_cidrs",
            "From the gateway: the configured endpoints only",
        )
    )
    out.append(
        _aws_rule_group(
            "client_providers",
            "egress-clients-no-providers",
            "DENYLIST",
            "local.provider_domains",
            "var.client_cidrs",
            "From developer and CI networks: no model provider",
        )
    )
    out.append(
        """
resource "aws_networkfirewall_firewall_policy" "egress_lockdown" {
  name        = "egress-lockdown"
  description = "egress lockdown: provider traffic only through the gateway"

  encryption_configuration {
    key_id = var.kms_key_arn
    type   = "CUSTOMER_KMS"
  }

  firewall_policy {
    stateless_default_actions          = ["aws:forward_to_sfe"]
    stateless_fragment_default_actions = ["aws:forward_to_sfe"]

    stateful_rule_group_reference {
      resource_arn = aws_networkfirewall_rule_group.client_providers.arn
    }

    stateful_rule_group_reference {
      resource_arn = aws_networkfirewall_rule_group.gateway_endpoints.arn
    }
  }
}
"""
    )
    return "".join(out)


def _aws_rule_group(resource: str, name: str, kind: str, targets: str, home: str, description: str) -> str:
    return f"""
resource "aws_networkfirewall_rule_group" "{resource}" {{
  name        = "{name}"
  description = "{description}"
  capacity    = 1000
  type        = "STATEFUL"

  encryption_configuration {{
    key_id = var.kms_key_arn
    type   = "CUSTOMER_KMS"
  }}

  rule_group {{
    rule_variables {{
      ip_sets {{
        key = "HOME_NET"
        ip_set {{
          definition = {home}
        }}
      }}
    }}

    rules_source {{
      rules_source_list {{
        generated_rules_type = "{kind}"
        target_types         = ["TLS_SNI", "HTTP_HOST"]
        targets              = {targets}
      }}
    }}
  }}
}}
"""


def _gcp(plan: LockdownPlan) -> str:
    gateway = plan.settings.gateway
    allowed = sorted({h.name for h in plan.gateway_hosts if not h.is_literal and not h.is_pattern})
    denied = sorted({h.name for h in plan.blocked_for_clients if not h.is_literal and not h.is_pattern})
    denied_ranges = sorted({str(n) for h in plan.blocked_for_clients if not h.is_loopback for n in plan.addresses(h)})
    allowed_ranges = sorted({str(n) for h in plan.gateway_hosts if not h.is_loopback for n in plan.addresses(h)})
    out = [header(plan, "terraform (GCP)", notes=[NOTE_GCP])]
    out.append(
        """terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
}

variable "project" {
  type        = string
  description = "The project of the VPC network"
}

variable "network" {
  type        = string
  description = "The VPC network's self link"
}

variable "gateway_service_account" {
  type        = string
  description = "The service account the gateway's instances or nodes run as"
}

variable "client_ranges" {
  type        = list(string)
  description = "Developer and CI networks: they reach the gateway, and no provider"
}

resource "google_compute_network_firewall_policy" "egress_lockdown" {
  name        = "egress-lockdown"
  project     = var.project
  description = "egress lockdown: provider traffic only through the gateway"
}

resource "google_compute_network_firewall_policy_association" "egress_lockdown" {
  name              = "egress-lockdown"
  project           = var.project
  firewall_policy   = google_compute_network_firewall_policy.egress_lockdown.name
  attachment_target = var.network
}
"""
    )
    priority = 1000
    if allowed or allowed_ranges:
        match = ""
        if allowed:
            match += f"\n    dest_fqdns = {_list(allowed)}"
        if allowed_ranges:
            match += f"\n    dest_ip_ranges = {_list(allowed_ranges)}" if not allowed else ""
        out.append(
            f"""
resource "google_compute_network_firewall_policy_rule" "gateway_to_endpoints" {{
  project                 = var.project
  firewall_policy         = google_compute_network_firewall_policy.egress_lockdown.name
  description             = "The gateway reaches the configured endpoints"
  priority                = {priority}
  direction               = "EGRESS"
  action                  = "allow"
  enable_logging          = true
  target_service_accounts = [var.gateway_service_account]

  match {{{match}

    layer4_configs {{
      ip_protocol = "tcp"
      ports       = {_list([str(p) for p in sorted({h.port for h in plan.gateway_hosts})])}
    }}
  }}
}}
"""
        )
    if denied:
        out.append(
            _gcp_deny(
                "deny_provider_names",
                priority + 100,
                "No provider name from anywhere else",
                f"dest_fqdns = {_list(denied)}",
            )
        )
    if denied_ranges:
        out.append(
            _gcp_deny(
                "deny_provider_ranges",
                priority + 200,
                "No provider address range from anywhere else",
                f"dest_ip_ranges = {_list(denied_ranges)}",
            )
        )
    out.append(
        f"""
resource "google_compute_firewall" "gateway_from_clients" {{
  name                    = "egress-gateway-from-clients"
  project                 = var.project
  network                 = var.network
  description             = "Developer and CI clients to the gateway"
  direction               = "INGRESS"
  source_ranges           = var.client_ranges
  target_service_accounts = [var.gateway_service_account]

  allow {{
    protocol = "tcp"
    ports    = ["{gateway.port}"]
  }}

  log_config {{
    metadata = "INCLUDE_ALL_METADATA"
  }}
}}
"""
    )
    return "".join(out)


def _gcp_deny(resource: str, priority: int, description: str, match: str) -> str:
    return f"""
resource "google_compute_network_firewall_policy_rule" "{resource}" {{
  project         = var.project
  firewall_policy = google_compute_network_firewall_policy.egress_lockdown.name
  description     = "{description}"
  priority        = {priority}
  direction       = "EGRESS"
  action          = "deny"
  enable_logging  = true

  match {{
    {match}

    layer4_configs {{
      ip_protocol = "all"
    }}
  }}
}}
"""


def _domain(host: ProviderHost) -> str:
    return host.name[1:] if host.is_pattern else host.name


def _list(items: list[str]) -> str:
    if not items:
        return "[]"
    if len(items) <= 2 and sum(len(i) for i in items) < 60:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"
    return "[\n" + "".join(f"    {json.dumps(i)},\n" for i in items) + "  ]"
