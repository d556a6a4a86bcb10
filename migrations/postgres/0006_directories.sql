-- SCIM directories: one per IdP connection of an organization. The bearer
-- token is stored as a SHA-256 hash with a lookup prefix, like API keys.
CREATE TABLE directories (
    id              UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name            TEXT NOT NULL,
    provider        TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    token_lookup    TEXT NOT NULL UNIQUE,
    token_hash      BYTEA NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    last_request_at TIMESTAMPTZ
);
CREATE INDEX directories_organization ON directories (organization_id);
