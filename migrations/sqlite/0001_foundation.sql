-- Foundation schema (SQLite). UUIDs are 16-byte BLOBs, timestamps RFC 3339 TEXT.

CREATE TABLE organizations (
    id          BLOB PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    external_id TEXT UNIQUE,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE organization_domains (
    id              BLOB PRIMARY KEY NOT NULL,
    organization_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    domain          TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'pending',
    created_at      TEXT NOT NULL,
    UNIQUE (organization_id, domain)
);
CREATE INDEX organization_domains_domain ON organization_domains (domain);

CREATE TABLE api_keys (
    id           BLOB PRIMARY KEY NOT NULL,
    name         TEXT NOT NULL,
    lookup       TEXT NOT NULL UNIQUE,
    secret_hash  BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);

CREATE TABLE events (
    id              BLOB PRIMARY KEY NOT NULL,
    type            TEXT NOT NULL,
    organization_id BLOB,
    occurred_at     TEXT NOT NULL,
    data            TEXT NOT NULL
);
CREATE INDEX events_type ON events (type, id);
CREATE INDEX events_organization ON events (organization_id, id);
