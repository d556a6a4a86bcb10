//! `organization_domains` beyond what the organization aggregate writes:
//! listing, adding and removing single domains, claiming due checks, and
//! applying a check's [`Transition`](crate::domains::Transition) in one
//! transaction.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{Conflict, Store, StoreError, Tx, on_tx, on_unique, orgs, with_pool};
use crate::domains::{BeforeCheck, Domain, Policy, TXT_VALUE_PREFIX, Verdict, decide};
use crate::events::{EventKind, NewEvent};
use crate::orgs::{DomainName, DomainState};

#[derive(sqlx::FromRow)]
struct DomainRow {
    id: Uuid,
    organization_id: Uuid,
    domain: String,
    #[sqlx(try_from = "String")]
    state: DomainState,
    verification_token: String,
    checks: i64,
    last_checked_at: Option<OffsetDateTime>,
    last_result: Option<String>,
    next_check_at: Option<OffsetDateTime>,
    verified_at: Option<OffsetDateTime>,
    failed_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
}

/// `SELECT <every column> FROM organization_domains WHERE <$where>`.
macro_rules! select_domains {
    ($where:literal) => {
        concat!(
            "SELECT id, organization_id, domain, state, verification_token, checks, last_checked_at, ",
            "last_result, next_check_at, verified_at, failed_at, created_at FROM organization_domains WHERE ",
            $where
        )
    };
}

/// A stored row as the API, portal and events show it.
fn to_domain(policy: &Policy, r: DomainRow) -> Domain {
    let state = r.state;
    Domain {
        object: "domain",
        verification: policy.record(&r.domain, &r.verification_token),
        expires_at: (state == DomainState::Pending).then(|| policy.deadline(r.created_at)),
        id: r.id,
        organization_id: r.organization_id,
        domain: r.domain,
        state,
        checks: r.checks,
        last_checked_at: r.last_checked_at,
        last_result: r.last_result,
        next_check_at: r.next_check_at,
        verified_at: r.verified_at,
        failed_at: r.failed_at,
        created_at: r.created_at,
    }
}

/// One domain by id, inside `tx`.
async fn fetch(tx: &mut Tx<'_>, id: Uuid) -> Result<Option<DomainRow>, StoreError> {
    Ok(on_tx!(tx, |conn| sqlx::query_as(select_domains!("id = $1")).bind(id).fetch_optional(&mut *conn).await)?)
}

impl Store {
    /// Domains of `org_id`, by name.
    pub async fn list_domains(&self, policy: &Policy, org_id: Uuid) -> Result<Vec<Domain>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<DomainRow> = sqlx::query_as(select_domains!("organization_id = $1 ORDER BY domain"))
                .bind(org_id)
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(|r| to_domain(policy, r)).collect())
        })
    }

    /// One domain of `org_id`.
    pub async fn get_domain(&self, policy: &Policy, org_id: Uuid, domain: &str) -> Result<Option<Domain>, StoreError> {
        with_pool!(self, |pool| {
            let row: Option<DomainRow> = sqlx::query_as(select_domains!("organization_id = $1 AND domain = $2"))
                .bind(org_id)
                .bind(domain)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| to_domain(policy, r)))
        })
    }

    /// The organization that has verified `domain`, if any: the basis of
    /// domain- and email-based routing.
    pub async fn verified_owner(&self, domain: &str) -> Result<Option<Uuid>, StoreError> {
        with_pool!(self, |pool| {
            let row: Option<(Uuid,)> = sqlx::query_as(
                "SELECT organization_id FROM organization_domains WHERE domain = $1 AND state = 'verified'",
            )
            .bind(domain)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|(id,)| id))
        })
    }

    /// Adds `domain` (pending) to `org_id` and records `organization.updated`;
    /// `None` when the organization does not exist.
    pub async fn add_domain(
        &self,
        policy: &Policy,
        org_id: Uuid,
        domain: &DomainName,
    ) -> Result<Option<Domain>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let id = Uuid::now_v7();
        let mut tx = self.write().await?;
        if !orgs::exists(&mut tx, org_id).await? {
            return Ok(None);
        }
        orgs::refuse_if_verified_elsewhere(&mut tx, domain, org_id).await?;
        on_tx!(tx, |conn| {
            sqlx::query(
                r#"
                INSERT INTO organization_domains
                    (id, organization_id, domain, state, created_at, verification_token, next_check_at)
                VALUES ($1, $2, $3, 'pending', $4, $5, $4)
                "#,
            )
            .bind(id)
            .bind(org_id)
            .bind(domain.as_str())
            .bind(now)
            .bind(crate::secrets::domain_verification_token())
            .execute(&mut *conn)
            .await
            .map(|_| ())
        })
        .map_err(|e| on_unique(e, Conflict::DomainAlreadyAdded(domain.as_str().to_owned())))?;
        let row = fetch(&mut tx, id).await?.ok_or_else(|| anyhow::anyhow!("added domain vanished"))?;
        let org = orgs::touch(&mut tx, org_id, now).await?;
        tx.record(&NewEvent::new(EventKind::OrganizationUpdated, Some(org_id), &org)).await?;
        tx.commit().await?;
        Ok(Some(to_domain(policy, row)))
    }

    /// Removes `domain` from `org_id`; `false` when it was not there.
    pub async fn remove_domain(&self, org_id: Uuid, domain: &str) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        let mut tx = self.write().await?;
        let done = on_tx!(tx, |conn| {
            sqlx::query("DELETE FROM organization_domains WHERE organization_id = $1 AND domain = $2")
                .bind(org_id)
                .bind(domain)
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected())
        })?;
        if done == 0 {
            return Ok(false);
        }
        let org = orgs::touch(&mut tx, org_id, now).await?;
        tx.record(&NewEvent::new(EventKind::OrganizationUpdated, Some(org_id), &org)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Claims up to `limit` pending domains whose check is due, pushing their
    /// next check `lease` ahead so other replicas skip them meanwhile.
    pub async fn claim_due_domains(&self, limit: i64, lease: Duration) -> Result<Vec<Uuid>, StoreError> {
        let now = OffsetDateTime::now_utc();
        with_pool!(self, |pool| {
            let due: Vec<(Uuid, OffsetDateTime)> = sqlx::query_as(
                r#"
                SELECT id, next_check_at FROM organization_domains
                WHERE state = 'pending' AND next_check_at <= $1
                ORDER BY next_check_at LIMIT $2
                "#,
            )
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut claimed = Vec::new();
            for (id, due_at) in due {
                let won = sqlx::query(
                    "UPDATE organization_domains SET next_check_at = $3 WHERE id = $1 AND next_check_at = $2 AND state = 'pending'",
                )
                .bind(id)
                .bind(due_at)
                .bind(now + lease)
                .execute(pool)
                .await?
                .rows_affected();
                if won == 1 {
                    claimed.push(id);
                }
            }
            Ok(claimed)
        })
    }

    /// Applies a check of domain `id` made by looking up `before`'s record:
    /// the state transition ([`decide`]), its event, and what the IT admin
    /// sees, in one transaction. A domain that was verified, or whose token
    /// changed, since `before` was read is returned as it is now.
    pub(crate) async fn apply_domain_check(
        &self,
        policy: &Policy,
        before: &Domain,
        verdict: &Verdict,
        now: OffsetDateTime,
    ) -> Result<Option<Domain>, StoreError> {
        let id = before.id;
        let mut tx = self.write().await?;
        let Some(row) = fetch(&mut tx, id).await? else { return Ok(None) };
        let token = before.verification.value.strip_prefix(TXT_VALUE_PREFIX).unwrap_or_default();
        if row.state == DomainState::Verified || row.verification_token != token {
            return Ok(Some(to_domain(policy, row)));
        }
        let taken_elsewhere = match verdict {
            Verdict::Verified => on_tx!(tx, |conn| {
                sqlx::query_as::<_, (Uuid,)>(
                    "SELECT organization_id FROM organization_domains WHERE domain = $1 AND state = 'verified' AND id <> $2",
                )
                .bind(&row.domain)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
            })?
            .is_some(),
            _ => false,
        };
        let state =
            BeforeCheck { domain: &row.domain, state: row.state, created_at: row.created_at, checks: row.checks };
        let t = decide(policy, state, verdict, taken_elsewhere, &before.verification.value, now);
        on_tx!(tx, |conn| {
            sqlx::query(
                r#"
                UPDATE organization_domains
                SET state = $2, checks = $3, last_checked_at = $4, last_result = $5, next_check_at = $6,
                    verified_at = CASE WHEN $2 = 'verified' THEN $4 ELSE verified_at END,
                    failed_at = CASE WHEN $2 = 'failed' AND state <> 'failed' THEN $4 ELSE failed_at END
                WHERE id = $1
                "#,
            )
            .bind(id)
            .bind(t.state.as_str())
            .bind(t.checks)
            .bind(now)
            .bind(&t.result)
            .bind(t.next_check_at)
            .execute(&mut *conn)
            .await
            .map(|_| ())
        })
        .map_err(|e| on_unique(e, Conflict::DomainVerifiedElsewhere(row.domain.clone())))?;
        let after = fetch(&mut tx, id).await?.ok_or_else(|| anyhow::anyhow!("checked domain vanished"))?;
        let after = to_domain(policy, after);
        if let Some(kind) = t.event {
            tx.record(&NewEvent::new(kind, Some(after.organization_id), &after)).await?;
        }
        tx.commit().await?;
        Ok(Some(after))
    }

    /// One domain by id.
    pub(crate) async fn domain_by_id(&self, policy: &Policy, id: Uuid) -> Result<Option<Domain>, StoreError> {
        with_pool!(self, |pool| {
            let row: Option<DomainRow> =
                sqlx::query_as(select_domains!("id = $1")).bind(id).fetch_optional(pool).await?;
            Ok(row.map(|r| to_domain(policy, r)))
        })
    }
}
