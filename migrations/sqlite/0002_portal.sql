-- Portal links (single use, short lived) and the sessions they start.

CREATE TABLE portal_links (
    id              BLOB PRIMARY KEY NOT NULL,
    organization_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    lookup          TEXT NOT NULL UNIQUE,
    secret_hash     BLOB NOT NULL,
    intents         TEXT NOT NULL,
    return_url      TEXT,
    success_url     TEXT,
    email           TEXT,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    used_at         TEXT
);
CREATE INDEX portal_links_organization ON portal_links (organization_id);

CREATE TABLE portal_sessions (
    id              BLOB PRIMARY KEY NOT NULL,
    organization_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    link_id         BLOB REFERENCES portal_links (id) ON DELETE SET NULL,
    lookup          TEXT NOT NULL UNIQUE,
    secret_hash     BLOB NOT NULL,
    intents         TEXT NOT NULL,
    return_url      TEXT,
    success_url     TEXT,
    embedded        BOOLEAN NOT NULL,
    created_at      TEXT NOT NULL,
    expires_at      TEXT NOT NULL,
    last_seen_at    TEXT NOT NULL,
    revoked_at      TEXT
);
CREATE INDEX portal_sessions_organization ON portal_sessions (organization_id);
