-- Console SAML sign-in (egress/admin/saml.py): the assertions already used, so that one cannot
-- sign anyone in twice, on any replica sharing the store. `assertion` is the SHA-256 of the
-- issuer and the assertion ID, and a row is kept until the assertion itself expires
-- (`expires_at`, Unix seconds, its NotOnOrAfter plus the clock skew), then purged.
CREATE TABLE saml_assertions (
    assertion   TEXT PRIMARY KEY,
    expires_at  REAL NOT NULL
);
CREATE INDEX saml_assertions_expiry ON saml_assertions (expires_at);
