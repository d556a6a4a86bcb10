-- What each directory's IdP asked for, newest kept: the portal shows it so an
-- IT admin can see why provisioning fails. Written in batches off the request
-- path; trimmed to the newest rows per directory.
CREATE TABLE scim_requests (
    id           UUID PRIMARY KEY,
    directory_id UUID NOT NULL REFERENCES directories (id) ON DELETE CASCADE,
    occurred_at  TIMESTAMPTZ NOT NULL,
    method       TEXT NOT NULL,
    path         TEXT NOT NULL,
    status       INTEGER NOT NULL,
    latency_us   BIGINT NOT NULL,
    detail       TEXT
);
CREATE INDEX scim_requests_directory ON scim_requests (directory_id, id);
