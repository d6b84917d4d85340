"""The compliance pack (`egress report`): figures computed from the audit chain alone, the
sections an auditor or data-protection officer asks for (data-flow map, GDPR Art. 30 record,
DPIA input, government-access law, checklists, evidence anchors), and their renderers."""
