-- SCIM users as provisioned by the IdP. `resource` keeps the attributes the
-- IdP sent (minus id/meta); the key columns serve the hot lookups.
CREATE TABLE directory_users (
    id              UUID PRIMARY KEY,
    directory_id    UUID NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    organization_id UUID NOT NULL,
    user_name       TEXT NOT NULL,
    user_name_key   TEXT NOT NULL,
    external_id     TEXT,
    active          BOOLEAN NOT NULL,
    resource        JSONB NOT NULL,
    version         BIGINT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (directory_id, user_name_key)
);
CREATE INDEX directory_users_external_id ON directory_users (directory_id, external_id);

-- Every email of every user, lowercased, for `emails[value eq …]`.
CREATE TABLE directory_user_emails (
    user_id      UUID NOT NULL REFERENCES directory_users (id) ON DELETE CASCADE,
    directory_id UUID NOT NULL,
    email_key    TEXT NOT NULL,
    PRIMARY KEY (user_id, email_key)
);
CREATE INDEX directory_user_emails_lookup ON directory_user_emails (directory_id, email_key);
