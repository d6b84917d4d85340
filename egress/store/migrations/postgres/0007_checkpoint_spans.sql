-- Version 2 checkpoints (egress.audit.checkpoint) also sign their span: the first record after
-- the previous checkpoint, and the Merkle root (hex) over the records first_seq..seq.
-- Both stay NULL for the version 1 checkpoints signed before.
ALTER TABLE audit_checkpoints ADD COLUMN first_seq BIGINT;
ALTER TABLE audit_checkpoints ADD COLUMN root TEXT;
