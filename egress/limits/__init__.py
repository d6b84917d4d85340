"""Rate limits and budgets per key, user and team (docs/limits.md).

- settings.py   the `limits:` section (limits per key, user, team; price overrides)
- windows.py    what each limit counts, its window, and the one admission rule
- counters.py   the counters: one atomic Lua script in Redis, or the same rule in process
- prices.py     prices per model (the catalog's `prices:`, then the configuration's) -> spend
- quota.py      admission before the policy (a native 429), reconciliation after the answer
- usage_log.py  usage per minute and day, written to the store in batches (egress usage, console)
- metrics.py    refusals and Redis fallbacks, in the gateway's Prometheus registry
"""
