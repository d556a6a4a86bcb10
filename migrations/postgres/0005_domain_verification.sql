-- Domain verification by DNS TXT: a per-domain token, check history and the
-- re-check schedule. A verified domain belongs to one organization only.
ALTER TABLE organization_domains ADD COLUMN verification_token TEXT NOT NULL DEFAULT '';
UPDATE organization_domains SET verification_token = md5(random()::text || id::text) WHERE verification_token = '';
ALTER TABLE organization_domains ADD COLUMN checks BIGINT NOT NULL DEFAULT 0;
ALTER TABLE organization_domains ADD COLUMN last_checked_at TIMESTAMPTZ;
ALTER TABLE organization_domains ADD COLUMN last_result TEXT;
ALTER TABLE organization_domains ADD COLUMN next_check_at TIMESTAMPTZ;
ALTER TABLE organization_domains ADD COLUMN verified_at TIMESTAMPTZ;
ALTER TABLE organization_domains ADD COLUMN failed_at TIMESTAMPTZ;
UPDATE organization_domains SET next_check_at = created_at WHERE state = 'pending';

CREATE UNIQUE INDEX organization_domains_verified_unique ON organization_domains (domain) WHERE state = 'verified';
CREATE INDEX organization_domains_due ON organization_domains (next_check_at) WHERE state = 'pending';
