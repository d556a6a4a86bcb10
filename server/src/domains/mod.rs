//! Domain verification by DNS TXT: each domain of an organization gets a
//! token; publishing `<txt_label>.<domain> TXT "portico-verification=<token>"`
//! proves control. Pending domains are re-checked in the background with
//! backoff and fail after `domains.pending_timeout_secs`. A verified domain
//! belongs to exactly one organization.

pub mod dns;

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::config::DomainSettings;
use crate::events::{EventKind, NewEvent};
use crate::orgs::{DomainName, DomainState, refuse_if_verified_elsewhere, touch_org};
use crate::store::events::insert_event;
use crate::store::{BeginWrite, Store, StoreError, on_unique, with_pool};
use dns::{DnsChecker, Lookup};

/// Prefix of the TXT value; the token follows it.
pub const TXT_VALUE_PREFIX: &str = "portico-verification=";

/// The DNS record an IT admin publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TxtRecord {
    /// Always `TXT`.
    #[serde(rename = "type")]
    #[schema(schema_with = txt)]
    pub kind: &'static str,
    /// Fully qualified name, without the trailing dot.
    pub name: String,
    /// The label relative to the domain (what most DNS consoles ask for).
    pub host: String,
    /// `portico-verification=<token>`.
    pub value: String,
}

fn txt() -> utoipa::openapi::schema::Object {
    crate::fields::schema::constant("TXT")
}

/// A domain with its verification details, as the API, portal and events
/// show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = VerifiableDomain)]
pub struct Domain {
    #[schema(schema_with = crate::fields::schema::object::domain)]
    pub object: &'static str,
    pub id: Uuid,
    pub organization_id: Uuid,
    #[schema(example = "acme.com")]
    pub domain: String,
    pub state: DomainState,
    pub verification: TxtRecord,
    /// Checks made so far (manual and background).
    pub checks: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_checked_at: Option<OffsetDateTime>,
    /// What the last check found, in words.
    pub last_result: Option<String>,
    /// When the next background check is due (pending domains only).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_check_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub failed_at: Option<OffsetDateTime>,
    /// When a pending domain fails if still unverified.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct DomainRow {
    id: Uuid,
    organization_id: Uuid,
    domain: String,
    state: String,
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

/// Record naming and timing rules, from the settings.
#[derive(Debug, Clone)]
pub struct Policy {
    pub txt_label: String,
    pub recheck_base: Duration,
    pub recheck_max: Duration,
    pub pending_timeout: Duration,
}

impl Policy {
    pub fn from_settings(s: &DomainSettings) -> Self {
        Self {
            txt_label: s.txt_label.clone(),
            recheck_base: Duration::seconds(s.recheck_base_secs as i64),
            recheck_max: Duration::seconds(s.recheck_max_secs as i64),
            pending_timeout: Duration::seconds(s.pending_timeout_secs as i64),
        }
    }

    pub fn record(&self, domain: &str, token: &str) -> TxtRecord {
        TxtRecord {
            kind: "TXT",
            name: format!("{}.{domain}", self.txt_label),
            host: self.txt_label.clone(),
            value: format!("{TXT_VALUE_PREFIX}{token}"),
        }
    }

    /// Delay before the next background check after `checks` checks.
    pub fn backoff(&self, checks: i64) -> Duration {
        let exp = (checks.max(1) - 1).min(20) as u32;
        (self.recheck_base * 2i32.pow(exp.min(30))).min(self.recheck_max)
    }

    fn domain(&self, r: DomainRow) -> Domain {
        let state = DomainState::from_db(&r.state);
        Domain {
            object: "domain",
            verification: self.record(&r.domain, &r.verification_token),
            expires_at: (state == DomainState::Pending).then(|| r.created_at + self.pending_timeout),
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
}

/// The outcome of one check, judged against the expected value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    /// Looked up fine, but the record is not there (yet).
    NotFound(String),
    /// The lookup itself failed; retried later.
    LookupFailed(String),
}

/// Judges a lookup: the expected value must be one of the TXT strings
/// (surrounding whitespace ignored, case-sensitive token).
pub fn judge(lookup: &Lookup, record: &TxtRecord) -> Verdict {
    match lookup {
        Lookup::Found(values) if values.iter().any(|v| v.trim() == record.value) => Verdict::Verified,
        Lookup::Found(values) if values.is_empty() => {
            Verdict::NotFound(format!("no TXT record at {} yet", record.name))
        }
        Lookup::Found(values) => {
            let shown: Vec<String> = values.iter().take(5).map(|v| format!("{:?}", truncate(v, 120))).collect();
            Verdict::NotFound(format!(
                "TXT records at {} do not contain the expected value; found {}",
                record.name,
                shown.join(", ")
            ))
        }
        Lookup::NxDomain => Verdict::NotFound(format!("{} does not exist (NXDOMAIN)", record.name)),
        Lookup::Failed(e) => Verdict::LookupFailed(format!("DNS lookup failed ({e}); will retry")),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Store {
    /// Domains of `org_id`, by name.
    pub async fn list_domains(&self, policy: &Policy, org_id: Uuid) -> Result<Vec<Domain>, StoreError> {
        with_pool!(self, |pool| {
            let rows: Vec<DomainRow> = sqlx::query_as(select_domains!("organization_id = $1 ORDER BY domain"))
                .bind(org_id)
                .fetch_all(pool)
                .await?;
            Ok(rows.into_iter().map(|r| policy.domain(r)).collect())
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
            Ok(row.map(|r| policy.domain(r)))
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
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let exists: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM organizations WHERE id = $1")
                .bind(org_id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_none() {
                return Ok(None);
            }
            refuse_if_verified_elsewhere!(tx, domain, org_id);
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
            .execute(&mut *tx)
            .await
            .map_err(|e| on_unique(e, format!("{} is already a domain of this organization", domain.as_str())))?;
            let row: DomainRow = sqlx::query_as(select_domains!("id = $1")).bind(id).fetch_one(&mut *tx).await?;
            let org = touch_org!(tx, org_id, now);
            insert_event!(tx, &NewEvent::new(EventKind::OrganizationUpdated, Some(org_id), &org))?;
            tx.commit().await?;
            self.announce_events();
            Ok(Some(policy.domain(row)))
        })
    }

    /// Removes `domain` from `org_id`; `false` when it was not there.
    pub async fn remove_domain(&self, org_id: Uuid, domain: &str) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let done = sqlx::query("DELETE FROM organization_domains WHERE organization_id = $1 AND domain = $2")
                .bind(org_id)
                .bind(domain)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if done == 0 {
                return Ok(false);
            }
            let org = touch_org!(tx, org_id, now);
            insert_event!(tx, &NewEvent::new(EventKind::OrganizationUpdated, Some(org_id), &org))?;
            tx.commit().await?;
            self.announce_events();
            Ok(true)
        })
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

    /// Checks domain `id` now and records the result: verified (and
    /// `domain.verified`), still pending with the next check scheduled, or
    /// failed after the pending timeout (and `domain.verification_failed`).
    /// A verified domain is left as it is. `None` when the domain is gone.
    pub async fn check_domain(
        &self,
        policy: &Policy,
        dns: &DnsChecker,
        id: Uuid,
        manual: bool,
    ) -> Result<Option<Domain>, StoreError> {
        let Some(before) = self.domain_by_id(policy, id).await? else { return Ok(None) };
        if before.state == DomainState::Verified {
            return Ok(Some(before));
        }
        // The lookup happens outside any transaction: it may take seconds.
        let lookup = dns.txt(&before.verification.name).await;
        let verdict = judge(&lookup, &before.verification);
        let now = OffsetDateTime::now_utc();
        tracing::info!(domain = %before.domain, org_id = %before.organization_id, ?verdict, manual, "domain checked");
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let row: Option<DomainRow> =
                sqlx::query_as(select_domains!("id = $1")).bind(id).fetch_optional(&mut *tx).await?;
            let Some(row) = row else { return Ok(None) };
            if row.state == "verified" || row.verification_token != before_token(&before) {
                return Ok(Some(policy.domain(row)));
            }
            let checks = row.checks + 1;
            let (state, result, next, event) = match &verdict {
                Verdict::Verified => {
                    let taken: Option<(Uuid,)> = sqlx::query_as(
                        "SELECT organization_id FROM organization_domains WHERE domain = $1 AND state = 'verified' AND id <> $2",
                    )
                    .bind(&row.domain)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if taken.is_some() {
                        let msg =
                            format!("record found, but {} is already verified by another organization", row.domain);
                        (row.state.clone(), msg, self.next_check(policy, &row, checks, now), None)
                    } else {
                        (
                            "verified".to_owned(),
                            format!("found {}", before.verification.value),
                            None,
                            Some(EventKind::DomainVerified),
                        )
                    }
                }
                Verdict::NotFound(msg) | Verdict::LookupFailed(msg) => {
                    let expired = now >= row.created_at + policy.pending_timeout;
                    if row.state == "pending" && expired {
                        ("failed".to_owned(), msg.clone(), None, Some(EventKind::DomainVerificationFailed))
                    } else {
                        (row.state.clone(), msg.clone(), self.next_check(policy, &row, checks, now), None)
                    }
                }
            };
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
            .bind(&state)
            .bind(checks)
            .bind(now)
            .bind(&result)
            .bind(next)
            .execute(&mut *tx)
            .await
            .map_err(|e| on_unique(e, format!("{} is already verified by another organization", row.domain)))?;
            let after: DomainRow = sqlx::query_as(select_domains!("id = $1")).bind(id).fetch_one(&mut *tx).await?;
            let after = policy.domain(after);
            if let Some(kind) = event {
                insert_event!(tx, &NewEvent::new(kind, Some(after.organization_id), &after))?;
            }
            tx.commit().await?;
            if event.is_some() {
                self.announce_events();
            }
            Ok(Some(after))
        })
    }

    fn next_check(&self, policy: &Policy, row: &DomainRow, checks: i64, now: OffsetDateTime) -> Option<OffsetDateTime> {
        (row.state == "pending").then(|| {
            let deadline = row.created_at + policy.pending_timeout;
            (now + policy.backoff(checks)).min(deadline.max(now))
        })
    }

    async fn domain_by_id(&self, policy: &Policy, id: Uuid) -> Result<Option<Domain>, StoreError> {
        with_pool!(self, |pool| {
            let row: Option<DomainRow> =
                sqlx::query_as(select_domains!("id = $1")).bind(id).fetch_optional(pool).await?;
            Ok(row.map(|r| policy.domain(r)))
        })
    }
}

fn before_token(d: &Domain) -> &str {
    d.verification.value.strip_prefix(TXT_VALUE_PREFIX).unwrap_or_default()
}

/// What handlers and the worker need to verify domains.
pub struct DomainService {
    pub policy: Policy,
    pub dns: DnsChecker,
    pub poll: std::time::Duration,
}

impl DomainService {
    pub fn from_settings(s: &DomainSettings) -> anyhow::Result<Self> {
        Ok(Self {
            policy: Policy::from_settings(s),
            dns: DnsChecker::from_settings(s)?,
            poll: std::time::Duration::from_millis(s.poll_ms),
        })
    }
}

/// Background re-checks of pending domains, in every replica; claims keep
/// replicas from checking the same domain at once.
pub async fn run_worker(
    store: Store,
    service: std::sync::Arc<DomainService>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let (policy, dns, poll) = (&service.policy, &service.dns, service.poll);
    tokio::pin!(shutdown);
    loop {
        if store.is_closed() {
            break;
        }
        match store.claim_due_domains(20, Duration::minutes(5)).await {
            Ok(ids) => {
                for id in ids {
                    if let Err(e) = store.check_domain(policy, dns, id, false).await {
                        tracing::error!(error = format!("{e:#}"), domain_id = %id, "domain re-check failed");
                    }
                }
            }
            Err(e) => tracing::error!(error = format!("{e:#}"), "claiming due domain checks failed"),
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Policy {
        Policy::from_settings(&DomainSettings::default())
    }

    #[test]
    fn judge_accepts_only_the_exact_value() {
        let record = policy().record("acme.com", "abc123");
        assert_eq!(record.name, "_portico-verification.acme.com");
        assert_eq!(record.value, "portico-verification=abc123");
        let found = |v: &[&str]| Lookup::Found(v.iter().map(|s| s.to_string()).collect());
        assert_eq!(judge(&found(&["v=spf1 -all", " portico-verification=abc123 "]), &record), Verdict::Verified);
        assert!(
            matches!(judge(&found(&["portico-verification=abc124"]), &record), Verdict::NotFound(m) if m.contains("abc124"))
        );
        assert!(matches!(judge(&found(&["portico-verification=ABC123"]), &record), Verdict::NotFound(_)));
        assert!(matches!(judge(&found(&[]), &record), Verdict::NotFound(m) if m.contains("no TXT")));
        assert!(matches!(judge(&Lookup::NxDomain, &record), Verdict::NotFound(m) if m.contains("NXDOMAIN")));
        assert!(matches!(judge(&Lookup::Failed("timeout".into()), &record), Verdict::LookupFailed(_)));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = policy();
        assert_eq!(p.backoff(1), Duration::minutes(1));
        assert_eq!(p.backoff(2), Duration::minutes(2));
        assert_eq!(p.backoff(4), Duration::minutes(8));
        assert_eq!(p.backoff(40), Duration::hours(6));
    }

    #[test]
    fn tokens_are_random_hex() {
        let (a, b) = (crate::secrets::domain_verification_token(), crate::secrets::domain_verification_token());
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
