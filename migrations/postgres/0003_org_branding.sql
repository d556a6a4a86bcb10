-- Per-organization portal branding, overriding the vendor defaults.
ALTER TABLE organizations ADD COLUMN logo_url TEXT;
ALTER TABLE organizations ADD COLUMN accent_color TEXT;
