CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    request_id   TEXT NOT NULL,
    ts           REAL NOT NULL,
    user_name    TEXT,
    team         TEXT,
    api          TEXT,
    endpoint     TEXT,
    jurisdiction TEXT,
    outcome      TEXT NOT NULL,
    status       INTEGER,
    record       BLOB NOT NULL,
    prev_hash    TEXT NOT NULL,
    hash         TEXT NOT NULL
);
CREATE INDEX audit_log_ts ON audit_log (ts);
CREATE INDEX audit_log_request ON audit_log (request_id);

CREATE TABLE gateway_keys (
    key_id     TEXT PRIMARY KEY,
    key_hash   TEXT NOT NULL UNIQUE,
    user_name  TEXT NOT NULL,
    team       TEXT,
    created_at REAL NOT NULL,
    revoked_at REAL
);
