-- Console accounts (egress.admin): argon2 password hashes, never passwords. A team lead has a team.
CREATE TABLE console_users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'team_lead')),
    team          TEXT,
    created_at    DOUBLE PRECISION NOT NULL
);
-- Server-side console sessions: the SHA-256 of the cookie's token (the token itself is only in
-- the browser), the role and team at sign-in, and the session's CSRF token.
CREATE TABLE console_sessions (
    token_hash TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    role       TEXT NOT NULL,
    team       TEXT,
    csrf       TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
CREATE INDEX console_sessions_user ON console_sessions (user_name);
-- OIDC sign-ins in progress: keyed by the SHA-256 of the browser's short-lived login cookie, the
-- PKCE verifier stays here (never in the browser). Taken (deleted) by the callback, used once.
CREATE TABLE console_logins (
    login_hash    TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    nonce         TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    next_path     TEXT NOT NULL,
    expires_at    DOUBLE PRECISION NOT NULL
);
