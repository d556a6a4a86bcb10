-- Portal links can be revoked by the vendor (API, CLI); revoking a link also
-- ends the session it started, found by link id.
ALTER TABLE portal_links ADD COLUMN revoked_at TIMESTAMPTZ;
CREATE INDEX portal_sessions_link ON portal_sessions (link_id);
