//! Organizations: the vendor's customers. Each owns its domains, and later its
//! SSO connections and directories.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::events::{EventKind, NewEvent};
use crate::store::BeginWrite;
use crate::store::events::insert_event;
use crate::store::{Store, StoreError, on_unique, with_pool};

/// A validated organization display name: 1–200 characters after trimming,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgName(String);

impl OrgName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("must not be empty".into());
        }
        if name.chars().count() > 200 {
            return Err("must be at most 200 characters".into());
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The vendor's own identifier for an organization (e.g. its tenant id):
/// 1–255 visible characters, no surrounding whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty (send null to clear it)".into());
        }
        if raw.len() > 255 {
            return Err("must be at most 255 bytes".into());
        }
        if raw.trim() != raw {
            return Err("must not start or end with whitespace".into());
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A DNS domain name in canonical form: lowercase ASCII (IDNs in punycode),
/// no trailing dot, at least two labels, each 1–63 of `a-z0-9-` not starting
/// or ending with `-`, 253 characters at most, and a non-numeric TLD.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let lowered = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if lowered.is_empty() {
            return Err("must not be empty".into());
        }
        if !lowered.is_ascii() {
            return Err(format!("{raw:?} contains non-ASCII characters; use its punycode (xn--) form"));
        }
        if lowered.contains("://") || lowered.contains('/') || lowered.contains('@') {
            return Err(format!("{raw:?} is not a bare domain name (no scheme, path or email)"));
        }
        if lowered.len() > 253 {
            return Err(format!("{raw:?} is longer than 253 characters"));
        }
        let labels: Vec<&str> = lowered.split('.').collect();
        if labels.len() < 2 {
            return Err(format!("{raw:?} needs at least two labels, like example.com"));
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!("{raw:?} has an invalid label {label:?}"));
            }
        }
        if labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!("{raw:?} is not a domain name (numeric top-level label)"));
        }
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Verification state of a domain. Verification itself arrives with the
/// domain-verification capability; until then domains are `pending`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DomainState {
    Pending,
    Verified,
    Failed,
}

impl DomainState {
    pub(crate) fn from_db(s: &str) -> Self {
        match s {
            "verified" => Self::Verified,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// A domain as stored on an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Domain)]
pub struct OrgDomain {
    #[schema(example = "acme.com")]
    pub domain: String,
    pub state: DomainState,
}

/// An organization as returned by the API and carried in events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Organization {
    #[schema(schema_with = crate::fields::schema::object::organization)]
    pub object: &'static str,
    pub id: Uuid,
    pub name: String,
    #[schema(required = true)]
    pub external_id: Option<String>,
    pub domains: Vec<OrgDomain>,
    /// Overrides of the vendor's portal branding for this organization.
    pub branding: OrgBranding,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Portal branding overrides of one organization; unset fields fall back to
/// the vendor's settings (`vendor.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Branding)]
pub struct OrgBranding {
    /// An `https://` URL of at most 2048 characters.
    #[schema(format = "uri", max_length = 2048)]
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    #[schema(pattern = "^#[0-9a-fA-F]{6}$", example = "#1a2b3c")]
    pub accent_color: Option<String>,
}

impl OrgBranding {
    /// Validates both fields; errors name `branding.<field>`.
    pub fn parse(logo_url: Option<&str>, accent_color: Option<&str>) -> Result<Self, Vec<(String, String)>> {
        let mut errors = Vec::new();
        if let Some(url) = logo_url {
            let ok = url.starts_with("https://")
                && url.len() <= 2048
                && !url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"');
            if !ok {
                errors.push(("branding.logo_url".into(), "must be an https:// URL of at most 2048 characters".into()));
            }
        }
        if let Some(color) = accent_color {
            if crate::config::parse_hex_color(color).is_none() {
                errors.push(("branding.accent_color".into(), "must be a colour like #1a2b3c".into()));
            }
        }
        if errors.is_empty() {
            Ok(Self {
                logo_url: logo_url.map(str::to_owned),
                accent_color: accent_color.map(|c| c.to_ascii_lowercase()),
            })
        } else {
            Err(errors)
        }
    }
}

/// Input for [`Store::create_org`].
#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub name: OrgName,
    pub external_id: Option<ExternalId>,
    pub domains: Vec<DomainName>,
    pub branding: OrgBranding,
}

/// Partial update: `None` leaves a field unchanged. `external_id:
/// Some(None)` clears it; `domains: Some(list)` replaces the whole set.
#[derive(Debug, Clone, Default)]
pub struct OrgUpdate {
    pub name: Option<OrgName>,
    pub external_id: Option<Option<ExternalId>>,
    pub domains: Option<Vec<DomainName>>,
    /// Replaces both branding fields.
    pub branding: Option<OrgBranding>,
}

impl OrgUpdate {
    /// True when no field is given: nothing to write, no event to record.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.external_id.is_none() && self.domains.is_none() && self.branding.is_none()
    }
}

/// Filters and cursor for [`Store::list_orgs`].
#[derive(Debug, Clone, Default)]
pub struct OrgQuery {
    /// Return organizations with ids greater than this (cursor).
    pub after: Option<Uuid>,
    /// 1–100.
    pub limit: u32,
    pub external_id: Option<String>,
    pub domain: Option<DomainName>,
}

/// One page of organizations, in creation order.
#[derive(Debug, Clone)]
pub struct OrgPage {
    pub data: Vec<Organization>,
    /// Cursor for the next page, `None` on the last page.
    pub next_after: Option<Uuid>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct OrgRow {
    id: Uuid,
    name: String,
    external_id: Option<String>,
    logo_url: Option<String>,
    accent_color: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
pub(crate) struct DomainRow {
    organization_id: Uuid,
    domain: String,
    state: String,
}

const CONFLICT_EXTERNAL_ID: &str = "external_id is already used by another organization";

/// Joins rows of organizations with their domain rows (both ordered by
/// organization id).
pub(crate) fn assemble(orgs: Vec<OrgRow>, domains: Vec<DomainRow>) -> Vec<Organization> {
    let mut out: Vec<Organization> = orgs
        .into_iter()
        .map(|r| Organization {
            object: "organization",
            id: r.id,
            name: r.name,
            external_id: r.external_id,
            domains: Vec::new(),
            branding: OrgBranding { logo_url: r.logo_url, accent_color: r.accent_color },
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
        .collect();
    for d in domains {
        if let Some(org) = out.iter_mut().find(|o| o.id == d.organization_id) {
            org.domains.push(OrgDomain { state: DomainState::from_db(&d.state), domain: d.domain });
        }
    }
    out
}

/// Inserts `$domains` for `$org_id` inside `$tx`.
macro_rules! insert_domains {
    ($tx:expr, $org_id:expr, $domains:expr, $now:expr) => {{
        for domain in $domains {
            $crate::orgs::refuse_if_verified_elsewhere!($tx, domain, $org_id);
            sqlx::query(
                r#"
                INSERT INTO organization_domains
                    (id, organization_id, domain, state, created_at, verification_token, next_check_at)
                VALUES ($1, $2, $3, 'pending', $4, $5, $4)
                "#,
            )
            .bind(Uuid::now_v7())
            .bind($org_id)
            .bind(domain.as_str())
            .bind($now)
            .bind(crate::secrets::domain_verification_token())
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

/// Returns a conflict from the enclosing function when another organization
/// has verified `$domain` (a `DomainName`).
macro_rules! refuse_if_verified_elsewhere {
    ($tx:expr, $domain:expr, $org_id:expr) => {{
        let taken: Option<(Uuid,)> = sqlx::query_as(
            "SELECT organization_id FROM organization_domains WHERE domain = $1 AND state = 'verified' AND organization_id <> $2",
        )
        .bind($domain.as_str())
        .bind($org_id)
        .fetch_optional(&mut *$tx)
        .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!("{} is verified by another organization", $domain.as_str())));
        }
    }};
}

/// Reads one organization with its domains using executor `$ex`.
macro_rules! fetch_org {
    ($ex:expr, $id:expr) => {{
        let row: Option<$crate::orgs::OrgRow> = sqlx::query_as(
            r#"
            SELECT id, name, external_id, logo_url, accent_color, created_at, updated_at
            FROM organizations WHERE id = $1
            "#,
        )
        .bind($id)
        .fetch_optional(&mut *$ex)
        .await?;
        match row {
            None => None,
            Some(row) => {
                let domains: Vec<$crate::orgs::DomainRow> = sqlx::query_as(
                    r#"
                    SELECT organization_id, domain, state FROM organization_domains
                    WHERE organization_id = $1 ORDER BY domain
                    "#,
                )
                .bind($id)
                .fetch_all(&mut *$ex)
                .await?;
                $crate::orgs::assemble(vec![row], domains).pop()
            }
        }
    }};
}

/// Bumps `updated_at` of organization `$id` and reads it back (for an
/// `organization.updated` event in the same transaction).
macro_rules! touch_org {
    ($tx:expr, $id:expr, $now:expr) => {{
        sqlx::query("UPDATE organizations SET updated_at = $2 WHERE id = $1")
            .bind($id)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        $crate::orgs::fetch_org!($tx, $id).ok_or_else(|| anyhow::anyhow!("organization vanished"))?
    }};
}
pub(crate) use {fetch_org, refuse_if_verified_elsewhere, touch_org};

impl Store {
    /// Creates an organization and records `organization.created`.
    #[tracing::instrument(skip_all)]
    pub async fn create_org(&self, new: NewOrganization) -> Result<Organization, StoreError> {
        let id = Uuid::now_v7();
        let now = OffsetDateTime::now_utc();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                r#"
                INSERT INTO organizations (id, name, external_id, logo_url, accent_color, created_at, updated_at)
                VALUES ($1, $2, $3, $5, $6, $4, $4)
                "#,
            )
            .bind(id)
            .bind(new.name.as_str())
            .bind(new.external_id.as_ref().map(ExternalId::as_str))
            .bind(now)
            .bind(new.branding.logo_url.as_deref())
            .bind(new.branding.accent_color.as_deref())
            .execute(&mut *tx)
            .await
            .map_err(|e| on_unique(e, CONFLICT_EXTERNAL_ID))?;
            insert_domains!(tx, id, &new.domains, now);
            let org = fetch_org!(tx, id).ok_or_else(|| anyhow::anyhow!("created organization vanished"))?;
            insert_event!(tx, &NewEvent::new(EventKind::OrganizationCreated, Some(id), &org))?;
            tx.commit().await?;
            self.announce_events();
            Ok(org)
        })
    }

    /// The organization with `id`, if it exists.
    #[tracing::instrument(skip_all, fields(org_id = %id))]
    pub async fn get_org(&self, id: Uuid) -> Result<Option<Organization>, StoreError> {
        with_pool!(self, |pool| {
            let mut conn = pool.acquire().await?;
            Ok(fetch_org!(conn, id))
        })
    }

    /// A page of organizations in creation order.
    #[tracing::instrument(skip_all)]
    pub async fn list_orgs(&self, q: &OrgQuery) -> Result<OrgPage, StoreError> {
        let limit = q.limit.clamp(1, 100);
        with_pool!(self, |pool| {
            let mut conn = pool.acquire().await?;
            // One more than asked tells whether a next page exists.
            let mut orgs: Vec<OrgRow> = sqlx::query_as(
                r#"
                SELECT o.id, o.name, o.external_id, o.logo_url, o.accent_color, o.created_at, o.updated_at
                FROM organizations o
                WHERE ($1 IS NULL OR o.id > $1)
                  AND ($2 IS NULL OR o.external_id = $2)
                  AND ($3 IS NULL OR EXISTS (
                        SELECT 1 FROM organization_domains d
                        WHERE d.organization_id = o.id AND d.domain = $3))
                ORDER BY o.id
                LIMIT $4
                "#,
            )
            .bind(q.after)
            .bind(q.external_id.as_deref())
            .bind(q.domain.as_ref().map(DomainName::as_str))
            .bind(i64::from(limit) + 1)
            .fetch_all(&mut *conn)
            .await?;
            let has_more = orgs.len() > limit as usize;
            orgs.truncate(limit as usize);
            let (Some(first), Some(last)) = (orgs.first(), orgs.last()) else {
                return Ok(OrgPage { data: Vec::new(), next_after: None });
            };
            let (first_id, last_id) = (first.id, last.id);
            let domains: Vec<DomainRow> = sqlx::query_as(
                r#"
                SELECT organization_id, domain, state FROM organization_domains
                WHERE organization_id >= $1 AND organization_id <= $2
                ORDER BY organization_id, domain
                "#,
            )
            .bind(first_id)
            .bind(last_id)
            .fetch_all(&mut *conn)
            .await?;
            let data = assemble(orgs, domains);
            Ok(OrgPage { next_after: has_more.then_some(last_id), data })
        })
    }

    /// Applies `update`; `None` when the organization does not exist.
    /// Records `organization.updated` when anything was given.
    #[tracing::instrument(skip_all, fields(org_id = %id))]
    pub async fn update_org(&self, id: Uuid, update: OrgUpdate) -> Result<Option<Organization>, StoreError> {
        let now = OffsetDateTime::now_utc();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let exists: Option<(Uuid,)> =
                sqlx::query_as("SELECT id FROM organizations WHERE id = $1").bind(id).fetch_optional(&mut *tx).await?;
            if exists.is_none() {
                return Ok(None);
            }
            if update.is_empty() {
                return Ok(fetch_org!(tx, id));
            }
            if let Some(name) = &update.name {
                sqlx::query("UPDATE organizations SET name = $2 WHERE id = $1")
                    .bind(id)
                    .bind(name.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(external_id) = &update.external_id {
                sqlx::query("UPDATE organizations SET external_id = $2 WHERE id = $1")
                    .bind(id)
                    .bind(external_id.as_ref().map(ExternalId::as_str))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| on_unique(e, CONFLICT_EXTERNAL_ID))?;
            }
            if let Some(branding) = &update.branding {
                sqlx::query("UPDATE organizations SET logo_url = $2, accent_color = $3 WHERE id = $1")
                    .bind(id)
                    .bind(branding.logo_url.as_deref())
                    .bind(branding.accent_color.as_deref())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(domains) = &update.domains {
                // Keep rows (and their verification state) for domains that stay.
                let current: Vec<(String,)> =
                    sqlx::query_as("SELECT domain FROM organization_domains WHERE organization_id = $1")
                        .bind(id)
                        .fetch_all(&mut *tx)
                        .await?;
                for (domain,) in &current {
                    if !domains.iter().any(|d| d.as_str() == domain) {
                        sqlx::query("DELETE FROM organization_domains WHERE organization_id = $1 AND domain = $2")
                            .bind(id)
                            .bind(domain)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                let added = domains.iter().filter(|d| !current.iter().any(|(c,)| c == d.as_str()));
                insert_domains!(tx, id, added, now);
            }
            sqlx::query("UPDATE organizations SET updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let org = fetch_org!(tx, id).ok_or_else(|| anyhow::anyhow!("updated organization vanished"))?;
            insert_event!(tx, &NewEvent::new(EventKind::OrganizationUpdated, Some(id), &org))?;
            tx.commit().await?;
            self.announce_events();
            Ok(Some(org))
        })
    }

    /// Deletes the organization and everything it owns; `false` when it did
    /// not exist. Records `organization.deleted`.
    #[tracing::instrument(skip_all, fields(org_id = %id))]
    pub async fn delete_org(&self, id: Uuid) -> Result<bool, StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let Some(org) = fetch_org!(tx, id) else {
                return Ok(false);
            };
            sqlx::query("DELETE FROM organizations WHERE id = $1").bind(id).execute(&mut *tx).await?;
            insert_event!(tx, &NewEvent::new(EventKind::OrganizationDeleted, Some(id), &org))?;
            tx.commit().await?;
            self.announce_events();
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_canonicalised() {
        assert_eq!(DomainName::parse(" Example.COM. ").unwrap().as_str(), "example.com");
        assert_eq!(DomainName::parse("xn--bcher-kva.example").unwrap().as_str(), "xn--bcher-kva.example");
    }

    #[test]
    fn bad_domain_names_are_rejected() {
        for bad in [
            "",
            "localhost",
            "-a.com",
            "a-.com",
            "a..com",
            "https://a.com",
            "a.com/x",
            "bob@a.com",
            "bücher.de",
            "1.2.3.4",
            "a_b.com",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(DomainName::parse(&long).is_err());
    }

    #[test]
    fn org_names_are_trimmed_and_bounded() {
        assert_eq!(OrgName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert!(OrgName::parse("   ").is_err());
        assert!(OrgName::parse(&"x".repeat(201)).is_err());
        assert!(OrgName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn external_ids_keep_exact_bytes() {
        assert_eq!(ExternalId::parse("tenant-42").unwrap().as_str(), "tenant-42");
        assert!(ExternalId::parse(" tenant").is_err());
        assert!(ExternalId::parse("").is_err());
    }
}
