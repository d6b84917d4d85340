-- Just-in-time approvals (egress.approve): one row per held request. No prompt content: finding
-- kinds/rules with counts, the policy's reasons, endpoints, model, and the masked request's digest.
-- Every state change is a conditional UPDATE (... WHERE status = 'pending'), so two approvers or
-- replicas racing cannot both win.
CREATE TABLE approvals (
    approval_id TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    user_name   TEXT NOT NULL,
    team        TEXT,
    request_id  TEXT NOT NULL,
    api         TEXT NOT NULL,
    model       TEXT,
    endpoints   TEXT NOT NULL,
    reasons     TEXT NOT NULL,
    kinds       TEXT NOT NULL,
    rules       TEXT NOT NULL,
    digest      TEXT NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL,
    decided_by  TEXT,
    decided_at  DOUBLE PRECISION,
    note        TEXT
);
CREATE INDEX approvals_retry ON approvals (digest, user_name, status);
CREATE INDEX approvals_status ON approvals (status, created_at);
