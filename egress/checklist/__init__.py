"""Answers to the provider pre-procurement checklist, for the CLI (`egress providers`) and the
console: facts from the catalog and the configured endpoints, weighed by the active policy."""
