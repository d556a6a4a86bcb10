-- Portal links (single use, short lived) and the sessions they start.

CREATE TABLE portal_links (
    id              UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    lookup          TEXT NOT NULL UNIQUE,
    secret_hash     BYTEA NOT NULL,
    intents         TEXT NOT NULL,
    return_url      TEXT,
    success_url     TEXT,
    email           TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    used_at         TIMESTAMPTZ
);
CREATE INDEX portal_links_organization ON portal_links (organization_id);

CREATE TABLE portal_sessions (
    id              UUID PRIMARY KEY,
    organization_id UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    link_id         UUID REFERENCES portal_links (id) ON DELETE SET NULL,
    lookup          TEXT NOT NULL UNIQUE,
    secret_hash     BYTEA NOT NULL,
    intents         TEXT NOT NULL,
    return_url      TEXT,
    success_url     TEXT,
    embedded        BOOLEAN NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    last_seen_at    TIMESTAMPTZ NOT NULL,
    revoked_at      TIMESTAMPTZ
);
CREATE INDEX portal_sessions_organization ON portal_sessions (organization_id);
