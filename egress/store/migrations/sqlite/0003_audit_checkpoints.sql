-- Signed checkpoints of the audit chain (egress.audit.checkpoint): one row per signed head:
-- when several writers sign the same head, the first one's row is kept.
CREATE TABLE audit_checkpoints (
    seq       INTEGER NOT NULL,
    key_id    TEXT NOT NULL,
    hash      TEXT NOT NULL,
    count     INTEGER NOT NULL,
    ts        REAL NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (seq, key_id)
);
