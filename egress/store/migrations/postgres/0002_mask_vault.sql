-- Session vault for stateful conversations (Responses previous_response_id): placeholder maps,
-- AES-GCM sealed by egress before they reach this table. Nothing here is readable without the key.
CREATE TABLE mask_vault (
    entry_id   TEXT PRIMARY KEY,
    sealed     BYTEA NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX mask_vault_expiry ON mask_vault (expires_at);
