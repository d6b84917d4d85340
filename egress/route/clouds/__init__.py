"""Native cloud upstreams: the endpoint kinds whose API is a cloud's own (`api: bedrock`,
`api: vertex`) while the client speaks Anthropic Messages to egress.

One seam (`adapter.CloudAdapter`): per endpoint kind, the path and body the cloud takes, the
credential on the final bytes (SigV4 signing, an OAuth2 bearer token), and the answer as the
client's API. The body and stream mappings are sans-IO, in `egress.wire.bedrock` and
`egress.wire.vertex`; the I/O (credential chains, token refresh) lives here.
"""
