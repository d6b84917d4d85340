-- The code index (egress.provenance, `egress index`): per repository, per file, the winnowed
-- fingerprints of its normalised tokens and the line each starts on. Never the code itself.
CREATE TABLE provenance_repos (
    name         TEXT PRIMARY KEY,
    public       BOOLEAN NOT NULL,
    source       TEXT NOT NULL,
    ref          TEXT,
    commit_sha   TEXT,
    indexed_at   DOUBLE PRECISION NOT NULL,
    files        INTEGER NOT NULL,
    lines        BIGINT NOT NULL,
    fingerprints BIGINT NOT NULL,
    size_bytes   BIGINT NOT NULL
);
CREATE TABLE provenance_files (
    repo     TEXT NOT NULL REFERENCES provenance_repos (name) ON DELETE CASCADE,
    path     TEXT NOT NULL,
    digest   TEXT NOT NULL,
    language TEXT NOT NULL,
    lines    INTEGER NOT NULL,
    hashes   BYTEA NOT NULL,
    starts   BYTEA NOT NULL,
    PRIMARY KEY (repo, path)
);
-- Bumped by every change to the index: each gateway process reloads its lookup when it moves.
CREATE TABLE provenance_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO provenance_generation (id, generation) VALUES (1, 0);
