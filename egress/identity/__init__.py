"""Who is asking, proven by a third party: OIDC tokens from the organisation's identity provider.

`oidc` verifies ID and access tokens (JWT) against the issuer's published keys; `token_cache`
keeps verified tokens for the hot path; `oidc_login` runs the console's sign-in (authorization
code + PKCE). Only `egress.core` is imported from below.
"""
