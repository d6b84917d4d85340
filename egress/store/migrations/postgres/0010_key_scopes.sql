-- Scoped and expiring gateway keys (egress keys create --expires/--apis/--models/--endpoints,
-- --service-account, and egress keys rotate). Keys made before this migration keep NULLs here:
-- no expiry, no scope (scope NULL reads as unscoped), a person's key, never used as far as known.
ALTER TABLE gateway_keys ADD COLUMN expires_at DOUBLE PRECISION;
-- JSON: {"apis": [...], "models": [...], "endpoints": [...]} (egress/core/key_scope.py).
ALTER TABLE gateway_keys ADD COLUMN scope TEXT;
ALTER TABLE gateway_keys ADD COLUMN service_account TEXT;
ALTER TABLE gateway_keys ADD COLUMN rotated_from TEXT;
-- Written in batches by the gateways (never once per request): as of the last flush.
ALTER TABLE gateway_keys ADD COLUMN last_used_at DOUBLE PRECISION;
