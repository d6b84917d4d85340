-- Recorded payloads (policy obligation record_payload, see egress.audit.recording): the masked body
-- sent upstream and the answer as received, each AES-256-GCM sealed by egress before it reaches
-- this table, under the recording key named by key_id. Retention sets sent and received to NULL
-- and keeps the row. metadata is JSON of kinds, counts, sizes, endpoint and status: never a value.
CREATE TABLE recordings (
    request_id  TEXT PRIMARY KEY,
    recorded_at DOUBLE PRECISION NOT NULL,
    expires_at  DOUBLE PRECISION NOT NULL,
    key_id      TEXT NOT NULL,
    sent        BYTEA,
    received    BYTEA,
    metadata    BYTEA NOT NULL
);
CREATE INDEX recordings_expiry ON recordings (expires_at);
