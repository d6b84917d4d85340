"""The defaults of the inspect stage's bounds, defined once: DetectionSettings (the `detection:`
section) and TextScanner both read them here, so `egress scan` gets them without loading pydantic."""

# Real prompts hold a handful of secrets per text; thousands is a dump of credentials.
DEFAULT_MAX_FINDINGS = 2000
# Memory for the findings of texts already seen, in MiB.
DEFAULT_CACHE_MB = 32
