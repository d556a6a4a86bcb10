-- SSO connections (SAML or OIDC) of an organization, the logins in flight,
-- the one-time codes handed to the vendor's app, the SAML assertion replay
-- cache and recent sign-in attempts for troubleshooting.
CREATE TABLE sso_connections (
    id              BLOB PRIMARY KEY NOT NULL,
    organization_id BLOB NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    kind            TEXT NOT NULL,             -- saml | oidc
    provider        TEXT NOT NULL,             -- okta | entra | google | generic
    name            TEXT NOT NULL,
    state           TEXT NOT NULL DEFAULT 'draft', -- draft | active | inactive
    config          TEXT NOT NULL,            -- IdP details, no secrets
    client_secret   TEXT,                     -- OIDC client secret, encrypted
    attribute_map   TEXT NOT NULL,
    cert_expires_at TEXT,
    cert_warned_for TEXT,                -- the expiry last warned about
    tested_at       TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX sso_connections_organization ON sso_connections (organization_id);

CREATE TABLE sso_logins (
    id               BLOB PRIMARY KEY NOT NULL,
    state_hash       BLOB NOT NULL UNIQUE,
    connection_id    BLOB NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE,
    purpose          TEXT NOT NULL,            -- login | test
    redirect_uri     TEXT,
    client_state     TEXT,
    saml_request_id  TEXT,
    oidc_nonce       TEXT,
    oidc_verifier    TEXT,                    -- PKCE verifier, encrypted
    created_at       TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    consumed_at      TEXT,
    outcome          TEXT,                     -- test logins: succeeded | failed
    result           TEXT                      -- test logins: profile JSON or the reason
);
CREATE INDEX sso_logins_saml_request ON sso_logins (saml_request_id);

CREATE TABLE sso_codes (
    code_hash     BLOB PRIMARY KEY NOT NULL,
    connection_id BLOB NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE,
    profile       TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    used_at       TEXT
);

CREATE TABLE sso_assertion_ids (
    connection_id BLOB NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE,
    assertion_id  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    PRIMARY KEY (connection_id, assertion_id)
);

CREATE TABLE sso_attempts (
    id            BLOB PRIMARY KEY NOT NULL,
    connection_id BLOB NOT NULL REFERENCES sso_connections (id) ON DELETE CASCADE,
    occurred_at   TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    outcome       TEXT NOT NULL,               -- succeeded | failed
    reason        TEXT,
    email         TEXT
);
CREATE INDEX sso_attempts_connection ON sso_attempts (connection_id, id);
