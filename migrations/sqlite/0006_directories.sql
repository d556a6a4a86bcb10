-- SCIM directories: one per IdP connection of an organization. The bearer
-- token is stored as a SHA-256 hash with a lookup prefix, like API keys.
CREATE TABLE directories (
    id              BLOB PRIMARY KEY NOT NULL,
    organization_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    provider        TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    token_lookup    TEXT NOT NULL UNIQUE,
    token_hash      BLOB NOT NULL,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL,
    last_request_at TEXT
);
CREATE INDEX directories_organization ON directories (organization_id);
