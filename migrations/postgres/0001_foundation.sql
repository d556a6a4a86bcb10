-- Foundation schema (PostgreSQL).

CREATE TABLE organizations (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    external_id TEXT UNIQUE,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE organization_domains (
    id              UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain          TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    created_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (organization_id, domain)
);
CREATE INDEX organization_domains_domain ON organization_domains (domain);

CREATE TABLE api_keys (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    lookup       TEXT NOT NULL UNIQUE,
    secret_hash  BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ
);

CREATE TABLE events (
    id              UUID PRIMARY KEY,
    type            TEXT NOT NULL,
    organization_id UUID,
    occurred_at     TIMESTAMPTZ NOT NULL,
    data            JSONB NOT NULL
);
CREATE INDEX events_type ON events (type, id);
CREATE INDEX events_organization ON events (organization_id, id);
