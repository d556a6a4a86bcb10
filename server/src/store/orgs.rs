//! `organizations` and `organization_domains`: SQL for the organization
//! aggregate (types in `orgs.rs`). Helpers that run inside a caller's
//! transaction take `&mut Tx`.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Conflict, Store, StoreError, Tx, on_tx, on_unique, with_pool};
use crate::events::{EventKind, NewEvent};
use crate::orgs::{
    DomainName, DomainState, ExternalId, NewOrganization, OrgBranding, OrgDomain, OrgPage, OrgQuery, OrgUpdate,
    Organization,
};

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
    #[sqlx(try_from = "String")]
    state: DomainState,
}

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
            org.domains.push(OrgDomain { state: d.state, domain: d.domain });
        }
    }
    out
}

/// Inserts `domains` as pending for `org_id`, refusing any that another
/// organization has verified.
async fn insert_domains<'d>(
    tx: &mut Tx<'_>,
    org_id: Uuid,
    domains: impl IntoIterator<Item = &'d DomainName>,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for domain in domains {
        refuse_if_verified_elsewhere(tx, domain, org_id).await?;
        on_tx!(tx, |conn| {
            sqlx::query(
                r#"
                INSERT INTO organization_domains
                    (id, organization_id, domain, state, created_at, verification_token, next_check_at)
                VALUES ($1, $2, $3, 'pending', $4, $5, $4)
                "#,
            )
            .bind(Uuid::now_v7())
            .bind(org_id)
            .bind(domain.as_str())
            .bind(now)
            .bind(crate::secrets::domain_verification_token())
            .execute(&mut *conn)
            .await
            .map(|_| ())
        })?;
    }
    Ok(())
}

/// A conflict when another organization has verified `domain`: a verified
/// domain belongs to one organization only.
pub(crate) async fn refuse_if_verified_elsewhere(
    tx: &mut Tx<'_>,
    domain: &DomainName,
    org_id: Uuid,
) -> Result<(), StoreError> {
    let taken: Option<(Uuid,)> = on_tx!(tx, |conn| {
        sqlx::query_as(
            "SELECT organization_id FROM organization_domains WHERE domain = $1 AND state = 'verified' AND organization_id <> $2",
        )
        .bind(domain.as_str())
        .bind(org_id)
        .fetch_optional(&mut *conn)
        .await
    })?;
    match taken {
        Some(_) => Err(StoreError::Conflict(Conflict::DomainVerifiedElsewhere(domain.as_str().to_owned()))),
        None => Ok(()),
    }
}

/// Reads one organization with its domains.
pub(crate) async fn fetch(tx: &mut Tx<'_>, id: Uuid) -> Result<Option<Organization>, StoreError> {
    let row: Option<OrgRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            r#"
            SELECT id, name, external_id, logo_url, accent_color, created_at, updated_at
            FROM organizations WHERE id = $1
            "#,
        )
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
    })?;
    let Some(row) = row else { return Ok(None) };
    let domains: Vec<DomainRow> = on_tx!(tx, |conn| {
        sqlx::query_as(
            r#"
            SELECT organization_id, domain, state FROM organization_domains
            WHERE organization_id = $1 ORDER BY domain
            "#,
        )
        .bind(id)
        .fetch_all(&mut *conn)
        .await
    })?;
    Ok(assemble(vec![row], domains).pop())
}

/// Whether organization `id` exists (the parent check of every write that
/// hangs something on an organization).
pub(crate) async fn exists(tx: &mut Tx<'_>, id: Uuid) -> Result<bool, StoreError> {
    let row: Option<(Uuid,)> = on_tx!(tx, |conn| {
        sqlx::query_as("SELECT id FROM organizations WHERE id = $1").bind(id).fetch_optional(&mut *conn).await
    })?;
    Ok(row.is_some())
}

/// Bumps `updated_at` of organization `id` and reads it back (for an
/// `organization.updated` event in the same transaction).
pub(crate) async fn touch(tx: &mut Tx<'_>, id: Uuid, now: OffsetDateTime) -> Result<Organization, StoreError> {
    on_tx!(tx, |conn| {
        sqlx::query("UPDATE organizations SET updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map(|_| ())
    })?;
    Ok(fetch(tx, id).await?.ok_or_else(|| anyhow::anyhow!("organization vanished"))?)
}

impl Store {
    /// Creates an organization and records `organization.created`.
    #[tracing::instrument(skip_all)]
    pub async fn create_org(&self, new: NewOrganization) -> Result<Organization, StoreError> {
        let id = Uuid::now_v7();
        let now = OffsetDateTime::now_utc();
        let mut tx = self.write().await?;
        on_tx!(tx, |conn| {
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
            .execute(&mut *conn)
            .await
            .map(|_| ())
        })
        .map_err(|e| on_unique(e, Conflict::ExternalIdTaken))?;
        insert_domains(&mut tx, id, &new.domains, now).await?;
        let org = fetch(&mut tx, id).await?.ok_or_else(|| anyhow::anyhow!("created organization vanished"))?;
        tx.record(&NewEvent::new(EventKind::OrganizationCreated, Some(id), &org)).await?;
        tx.commit().await?;
        Ok(org)
    }

    /// The organization with `id`, if it exists.
    #[tracing::instrument(skip_all, fields(org_id = %id))]
    pub async fn get_org(&self, id: Uuid) -> Result<Option<Organization>, StoreError> {
        let mut tx = self.read().await?;
        let org = fetch(&mut tx, id).await?;
        // Ended explicitly: a dropped transaction's rollback is deferred to
        // the connection's next use.
        tx.commit().await?;
        Ok(org)
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
        let mut tx = self.write().await?;
        if !exists(&mut tx, id).await? {
            return Ok(None);
        }
        if update.is_empty() {
            return fetch(&mut tx, id).await;
        }
        let current: Vec<(String,)> = on_tx!(tx, |conn| {
            if let Some(name) = &update.name {
                sqlx::query("UPDATE organizations SET name = $2 WHERE id = $1")
                    .bind(id)
                    .bind(name.as_str())
                    .execute(&mut *conn)
                    .await?;
            }
            if let Some(external_id) = &update.external_id {
                sqlx::query("UPDATE organizations SET external_id = $2 WHERE id = $1")
                    .bind(id)
                    .bind(external_id.as_ref().map(ExternalId::as_str))
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| on_unique(e, Conflict::ExternalIdTaken))?;
            }
            if let Some(branding) = &update.branding {
                sqlx::query("UPDATE organizations SET logo_url = $2, accent_color = $3 WHERE id = $1")
                    .bind(id)
                    .bind(branding.logo_url.as_deref())
                    .bind(branding.accent_color.as_deref())
                    .execute(&mut *conn)
                    .await?;
            }
            let mut current: Vec<(String,)> = Vec::new();
            if let Some(domains) = &update.domains {
                // Keep rows (and their verification state) for domains that stay.
                current = sqlx::query_as("SELECT domain FROM organization_domains WHERE organization_id = $1")
                    .bind(id)
                    .fetch_all(&mut *conn)
                    .await?;
                for (domain,) in &current {
                    if !domains.iter().any(|d| d.as_str() == domain) {
                        sqlx::query("DELETE FROM organization_domains WHERE organization_id = $1 AND domain = $2")
                            .bind(id)
                            .bind(domain)
                            .execute(&mut *conn)
                            .await?;
                    }
                }
            }
            current
        });
        if let Some(domains) = &update.domains {
            let added: Vec<&DomainName> =
                domains.iter().filter(|d| !current.iter().any(|(c,)| c == d.as_str())).collect();
            insert_domains(&mut tx, id, added, now).await?;
        }
        let org = touch(&mut tx, id, now).await?;
        tx.record(&NewEvent::new(EventKind::OrganizationUpdated, Some(id), &org)).await?;
        tx.commit().await?;
        Ok(Some(org))
    }

    /// Deletes the organization and everything it owns; `false` when it did
    /// not exist. Records `organization.deleted`.
    #[tracing::instrument(skip_all, fields(org_id = %id))]
    pub async fn delete_org(&self, id: Uuid) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let Some(org) = fetch(&mut tx, id).await? else {
            return Ok(false);
        };
        on_tx!(tx, |conn| sqlx::query("DELETE FROM organizations WHERE id = $1")
            .bind(id)
            .execute(&mut *conn)
            .await
            .map(|_| ()))?;
        tx.record(&NewEvent::new(EventKind::OrganizationDeleted, Some(id), &org)).await?;
        tx.commit().await?;
        Ok(true)
    }
}
