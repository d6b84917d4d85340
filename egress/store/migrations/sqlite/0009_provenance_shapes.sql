-- The line-shape keys of each indexed file (egress/provenance/shapes.py): the lookup's cheap
-- pre-check before lexing. NULL for files indexed before this column: a lookup over any such
-- file lexes every text, as before (re-index to get the pre-check).
ALTER TABLE provenance_files ADD COLUMN shapes BLOB;
