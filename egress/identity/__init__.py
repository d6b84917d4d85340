"""Who is asking, proven by a third party: OIDC tokens from the organisation's identity provider.

`oidc` verifies ID and access tokens (JWT) against the issuer's published keys; `token_cache`
keeps verified tokens for the hot path; `oidc_login` runs the console's sign-in (authorization
code + PKCE); `saml` is the console's SAML 2.0 service provider (pysaml2, docs/identity.md).
Only `egress.core` is imported from below.
"""
