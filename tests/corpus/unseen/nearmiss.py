"""Part (c): near-misses. Lines that look like a credential and are not one: placeholders,
references, masked values, hashes in lock files, identifiers (UUIDs, commit SHAs, digests),
public keys and publishable keys, vendor documentation examples. None may be `certain`: a
`certain` finding blocks, holds or reroutes a request."""

from __future__ import annotations

NEAR_MISSES: tuple[str, ...] = (
    # Placeholders
    "DB_PASSWORD=changeme",
    'password = "changeme123"',
    "api_key: <your-api-key>",
    'API_KEY="<YOUR_API_KEY_HERE>"',
    "export OPENAI_API_KEY=sk-...",
    "token: xxxxxxxxxxxxxxxxxxxxxxxx",
    'GITHUB_TOKEN="ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"',
    "password: '********'",
    "Authorization: Bearer ****************",
    "secret_key = your_secret_key_here",
    "client_secret=REPLACE_ME",
    "STRIPE_KEY=sk_test_XXXXXXXXXXXXXXXXXXXXXXXX",
    "aws_secret_access_key = <redacted>",
    "password=[REDACTED]",
    "token = 'dummy-token'",
    "api_key = 'test'",
    "PASSWORD=password",
    "password: hunter2  # example from the docs",
    # References and templating
    "DB_PASSWORD=${DB_PASSWORD}",
    'password: "{{ .Values.db.password }}"',
    "password = %(db_password)s",
    'api_key = os.getenv("API_KEY")',
    "const token = process.env.GITHUB_TOKEN;",
    "secret: !vault |",
    "password: ${{ secrets.DB_PASSWORD }}",
    "ENV API_TOKEN=$API_TOKEN",
    'token := viper.GetString("auth.token")',
    "password = getpass.getpass()",
    "if password == confirm_password:",
    "def check(password: str) -> bool:",
    # Hashes, digests and identifiers
    '"integrity": "sha512-Zm9vYmFyYmF6cXV4cXV1eHF1dXpxdXV4cXV1eHF1dXpxdXV4cXV1eHF1dXpxdXV4cXV1eA==",',
    'resolved "https://registry.yarnpkg.com/left-pad/-/left-pad-1.3.0.tgz#5b8a3a7765dfe001261dde915589e782f8c94d1e"',
    "requests==2.32.3 --hash=sha256:70761cfe03c773ceb22aa2f671b4757976145175cdfca038c02654d061d6dcc6",
    "golang.org/x/net v0.25.0 h1:d/OCCoBEUq33pjydKrGQhw7IlUPI2Oylr+8qLx49kac=",
    'checksum = "3f2e7a0d9c1b5e8f4a6d2c0b9e8f7a6d5c4b3a2918f7e6d5c4b3a29180f7e6d5"',
    "image: ghcr.io/org/api@sha256:4b8e2f1a9c7d6e5f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    "request_id: 3f6c1a9e-8b2d-4e7f-9a0c-5d1b2e3f4a6b",
    'tenant_id = "72f988bf-86f1-41af-91ab-2d7cd011db47"',
    "Change-Id: I8473b95934b5732ac55d26311a706c9c2bde9940",
    'etag: "33a64df551425fcc55e4d42a148795d9f25f89d4"',
    # Public material
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl deploy@ci",
    "-----BEGIN PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----",
    "STRIPE_PUBLISHABLE_KEY=pk_live_51H8xYzAbCdEfGhIjKlMnOpQr",
    "address: 0x742d35Cc6634C0532925a3b844Bc454e4438f44e",
    # Vendor documentation examples
    "aws_access_key_id = AKIAIOSFODNN7EXAMPLE",
    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    # Prose and code that only mentions a credential
    "Rotate the password every 90 days and never commit the token.",
    "the api key is stored in the vault, ask #platform for access",
    "password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt())",
    "assert len(token) == 40",
)
