"""The hot state replicas share through Redis (docs/scaling.md).

- settings.py  the `redis:` section (url, key prefix, timeouts, TTLs)
- client.py    one client with bounded timeouts, its health for /readyz, and `Round`: one
               pipelined round trip that several uses fill (the ledger's read, a rate limit's count)
- ledger.py    the session ledger shared by all replicas, sealed (AES-256-GCM), with the store as
               the durable fallback

Without `redis.url` nothing here is built: a single process keeps its ledger in memory.
"""
