-- SIEM delivery (egress/siem): one row per sink. `seq`/`hash` are the last record the sink
-- acknowledged (0 and the genesis hash before the first), and only move forward. The lease
-- (`owner`, `lease_until`, Unix seconds) names the one gateway process delivering to the sink
-- now: another takes over only after it expired (a killed process stops renewing it).
CREATE TABLE siem_cursors (
    sink        TEXT PRIMARY KEY,
    seq         BIGINT NOT NULL,
    hash        TEXT NOT NULL,
    delivered_at DOUBLE PRECISION NOT NULL,
    owner       TEXT,
    lease_until DOUBLE PRECISION NOT NULL
);
