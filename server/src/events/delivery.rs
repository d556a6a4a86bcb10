//! Webhook delivery: at-least-once, signed, retried with exponential backoff
//! and jitter, safe with many replicas on one PostgreSQL.
//!
//! Deliveries are rows created in the same transaction as their event. A
//! worker *claims* due rows by writing its batch id and a lease expiry
//! (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas never claim the same
//! row); a crashed worker's claims become due again when the lease expires.
//! Every attempt is recorded. Workers wake on local commits, on PostgreSQL
//! `NOTIFY portico_deliveries` from other replicas, and on a poll interval.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use secrecy::ExposeSecret;
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use super::signing;
use crate::config::WebhookSettings;
use crate::crypto::Cipher;
use crate::store::{BeginWrite, Pool, Store, StoreError, with_pool};

/// A claimed delivery with everything needed to send it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    pub attempts: i32,
    pub url: String,
    pub secret_enc: String,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub organization_id: Option<Uuid>,
    pub occurred_at: OffsetDateTime,
    pub data: sqlx::types::Json<serde_json::Value>,
}

/// How one attempt ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    pub response: Option<String>,
    pub error: Option<String>,
}

/// A delivery as listed by the API.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeliveryInfo {
    pub event_id: Uuid,
    #[sqlx(rename = "type")]
    #[serde(rename = "event_type")]
    pub kind: String,
    pub endpoint_id: Uuid,
    pub status: String,
    pub attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
}

/// One recorded attempt.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AttemptInfo {
    pub event_id: Uuid,
    pub endpoint_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub attempted_at: OffsetDateTime,
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    pub response: Option<String>,
    pub error: Option<String>,
}

/// Envelope sent to receivers.
#[derive(Serialize)]
struct Envelope<'a> {
    id: Uuid,
    #[serde(rename = "type")]
    kind: &'a str,
    organization_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    data: &'a serde_json::Value,
}

/// Delay before attempt `attempts + 1`: base·2^(attempts−1), capped, ±20%.
pub fn backoff(settings: &WebhookSettings, attempts: u32) -> StdDuration {
    let exp = attempts.saturating_sub(1).min(30);
    let base = settings.retry_base_ms.saturating_mul(1u64 << exp);
    let capped = base.min(settings.retry_max_delay_secs.saturating_mul(1000));
    let mut r = [0u8; 2];
    getrandom::fill(&mut r).expect("OS random source available");
    let jitter = 0.8 + 0.4 * (u16::from_le_bytes(r) as f64 / u16::MAX as f64);
    StdDuration::from_millis((capped as f64 * jitter) as u64)
}

/// Due work first: pending rows whose time has come (partial index
/// `webhook_deliveries_pending`), then claims abandoned by a crashed worker
/// (`webhook_deliveries_leased`). Two statements keep both index-only.
/// One claim statement: `$set` the chosen rows, chosen by `$filter` in
/// `$order`; `$lock` is PostgreSQL's row locking clause (empty for SQLite,
/// whose writer lock already serializes claims).
macro_rules! claim_sql {
    ($set:literal, $filter:literal, $order:literal, $lock:literal) => {
        concat!(
            "UPDATE webhook_deliveries SET ",
            $set,
            ", lease_owner = $1, lease_expires_at = $2 WHERE (event_id, endpoint_id) IN (",
            "SELECT d.event_id, d.endpoint_id FROM webhook_deliveries d ",
            "JOIN webhook_endpoints e ON e.id = d.endpoint_id WHERE ",
            $filter,
            " AND e.enabled ORDER BY ",
            $order,
            " LIMIT $4",
            $lock,
            ")"
        )
    };
}

const CLAIM_PENDING_SQLITE: &str =
    claim_sql!("status = 'delivering'", "d.status = 'pending' AND d.next_attempt_at <= $3", "d.next_attempt_at", "");
const CLAIM_EXPIRED_SQLITE: &str =
    claim_sql!("status = status", "d.status = 'delivering' AND d.lease_expires_at < $3", "d.lease_expires_at", "");
const CLAIM_PENDING_POSTGRES: &str = claim_sql!(
    "status = 'delivering'",
    "d.status = 'pending' AND d.next_attempt_at <= $3",
    "d.next_attempt_at",
    " FOR UPDATE OF d SKIP LOCKED"
);
const CLAIM_EXPIRED_POSTGRES: &str = claim_sql!(
    "status = status",
    "d.status = 'delivering' AND d.lease_expires_at < $3",
    "d.lease_expires_at",
    " FOR UPDATE OF d SKIP LOCKED"
);

const CLAIMED_ROWS: &str = r#"
SELECT d.event_id, d.endpoint_id, d.attempts, e.url, e.secret_enc,
       ev.type, ev.organization_id, ev.occurred_at, ev.data
FROM webhook_deliveries d
JOIN webhook_endpoints e ON e.id = d.endpoint_id
JOIN events ev ON ev.id = d.event_id
WHERE d.lease_owner = $1 AND d.status = 'delivering'
"#;

impl Store {
    /// Claims up to `limit` due deliveries for batch `batch` (a unique lease
    /// owner) until `lease` from now.
    pub async fn claim_deliveries(
        &self,
        batch: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let limit = limit as i64;
        /// Claims in one transaction: abandoned leases first, then due rows.
        macro_rules! claim {
            ($tx:expr, $expired:expr, $pending:expr) => {{
                let n = sqlx::query($expired)
                    .bind(batch)
                    .bind(now + lease)
                    .bind(now)
                    .bind(limit)
                    .execute(&mut *$tx)
                    .await?
                    .rows_affected() as i64;
                if limit > n {
                    sqlx::query($pending)
                        .bind(batch)
                        .bind(now + lease)
                        .bind(now)
                        .bind(limit - n)
                        .execute(&mut *$tx)
                        .await?;
                }
                sqlx::query_as(CLAIMED_ROWS).bind(batch).fetch_all(&mut *$tx).await?
            }};
        }
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin_write().await?;
                let rows = claim!(tx, CLAIM_EXPIRED_SQLITE, CLAIM_PENDING_SQLITE);
                tx.commit().await?;
                Ok(rows)
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                let rows = claim!(tx, CLAIM_EXPIRED_POSTGRES, CLAIM_PENDING_POSTGRES);
                tx.commit().await?;
                Ok(rows)
            }
        }
    }

    /// Records an attempt and moves the delivery on: `succeeded`, back to
    /// `pending` at `retry_at`, or `failed`. Only the batch that holds the
    /// lease may complete it; returns whether it did.
    pub async fn complete_delivery(
        &self,
        claimed: &Claimed,
        batch: &str,
        outcome: &Outcome,
        next: Next,
    ) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        let (status, next_at, completed_at) = match next {
            Next::Done => ("succeeded", now, Some(now)),
            Next::RetryAt(at) => ("pending", at, None),
            Next::GiveUp => ("failed", now, Some(now)),
        };
        let postgres = matches!(self.pool, Pool::Postgres(_));
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if postgres {
                // Losing this commit in a crash only means delivering again
                // (at-least-once), so it need not wait for the WAL flush.
                sqlx::query("SET LOCAL synchronous_commit TO OFF").execute(&mut *tx).await?;
            }
            let updated = sqlx::query(
                r#"
                UPDATE webhook_deliveries
                SET status = $4, attempts = attempts + 1, next_attempt_at = $5, completed_at = $6,
                    lease_owner = NULL, lease_expires_at = NULL, last_status = $7, last_error = $8
                WHERE event_id = $1 AND endpoint_id = $2 AND lease_owner = $3
                "#,
            )
            .bind(claimed.event_id)
            .bind(claimed.endpoint_id)
            .bind(batch)
            .bind(status)
            .bind(next_at)
            .bind(completed_at)
            .bind(outcome.status_code.map(i32::from))
            .bind(outcome.error.as_deref())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(
                r#"
                INSERT INTO webhook_attempts
                    (id, event_id, endpoint_id, attempted_at, status_code, latency_ms, response, error)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                "#,
            )
            .bind(Uuid::now_v7())
            .bind(claimed.event_id)
            .bind(claimed.endpoint_id)
            .bind(now)
            .bind(outcome.status_code.map(i32::from))
            .bind(outcome.latency_ms)
            .bind(outcome.response.as_deref())
            .bind(outcome.error.as_deref())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(updated == 1)
        })
    }

    /// Deliveries of an endpoint, newest event first, optionally by status.
    pub async fn list_deliveries(
        &self,
        endpoint_id: Uuid,
        status: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DeliveryInfo>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                r#"
                SELECT d.event_id, ev.type, d.endpoint_id, d.status, d.attempts, d.next_attempt_at,
                       d.last_status, d.last_error, d.completed_at
                FROM webhook_deliveries d JOIN events ev ON ev.id = d.event_id
                WHERE d.endpoint_id = $1 AND ($2 IS NULL OR d.status = $2)
                ORDER BY d.event_id DESC
                LIMIT $3
                "#,
            )
            .bind(endpoint_id)
            .bind(status)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?)
    }

    /// Recorded attempts for one event, oldest first.
    pub async fn list_attempts(&self, event_id: Uuid) -> Result<Vec<AttemptInfo>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                r#"
                SELECT event_id, endpoint_id, attempted_at, status_code, latency_ms, response, error
                FROM webhook_attempts WHERE event_id = $1 ORDER BY attempted_at, id
                "#,
            )
            .bind(event_id)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Queues events again for delivery: the events with ids in
    /// `[from, to]` (or just `event`), to `endpoint` or to every enabled
    /// endpoint subscribed to their type. Returns how many deliveries were
    /// queued.
    pub async fn replay(&self, scope: ReplayScope, endpoint: Option<Uuid>) -> Result<u64, StoreError> {
        let now = OffsetDateTime::now_utc();
        let (from, to) = match scope {
            ReplayScope::Event(id) => (id, id),
            ReplayScope::Range { from, to } => (from, to),
        };
        let n = with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            // Reset deliveries that exist …
            let reset = sqlx::query(
                r#"
                UPDATE webhook_deliveries
                SET status = 'pending', attempts = 0, next_attempt_at = $3, completed_at = NULL,
                    lease_owner = NULL, lease_expires_at = NULL
                WHERE event_id >= $1 AND event_id <= $2 AND ($4 IS NULL OR endpoint_id = $4)
                  AND status <> 'delivering'
                "#,
            )
            .bind(from)
            .bind(to)
            .bind(now)
            .bind(endpoint)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            // … and create those that do not (endpoint added after the event).
            let created = sqlx::query(
                r#"
                INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at)
                SELECT DISTINCT ev.id, e.id, 'pending', 0, $3, $3
                FROM events ev
                JOIN webhook_subscriptions s ON ev.type LIKE s.pattern ESCAPE '\'
                JOIN webhook_endpoints e ON e.id = s.endpoint_id
                WHERE ev.id >= $1 AND ev.id <= $2 AND e.enabled AND ($4 IS NULL OR e.id = $4)
                ON CONFLICT DO NOTHING
                "#,
            )
            .bind(from)
            .bind(to)
            .bind(now)
            .bind(endpoint)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok::<_, StoreError>(reset + created)
        })?;
        self.announce_events();
        self.announce_deliveries();
        Ok(n)
    }
}

/// Which events to replay.
#[derive(Debug, Clone, Copy)]
pub enum ReplayScope {
    Event(Uuid),
    /// Inclusive id range (ids are time-ordered).
    Range {
        from: Uuid,
        to: Uuid,
    },
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy)]
pub enum Next {
    Done,
    RetryAt(OffsetDateTime),
    GiveUp,
}

/// The smallest UUID v7 at `t` (for time-range replays and cursors).
pub fn uuid_floor(t: OffsetDateTime) -> Uuid {
    let ms = (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70;
    b[8] = 0x80;
    Uuid::from_bytes(b)
}

/// The largest UUID v7 at `t`.
pub fn uuid_ceil(t: OffsetDateTime) -> Uuid {
    let ms = (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    let mut b = [0xffu8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x7f;
    b[8] = 0xbf;
    Uuid::from_bytes(b)
}

/// The delivery worker of one process.
pub struct Worker {
    store: Store,
    settings: WebhookSettings,
    cipher: Arc<Cipher>,
    client: reqwest::Client,
    /// Set when the operator asked for egress checks on webhooks
    /// (`outbound.check_webhooks`): URLs and resolved addresses are checked.
    egress: Option<Arc<crate::egress::Policy>>,
    id: String,
}

impl Worker {
    pub fn new(
        store: Store,
        settings: WebhookSettings,
        cipher: Arc<Cipher>,
        outbound: &crate::config::OutboundSettings,
    ) -> anyhow::Result<Self> {
        let egress = if outbound.check_webhooks {
            Some(Arc::new(crate::egress::Policy::from_settings(outbound).map_err(|e| anyhow::anyhow!(e))?))
        } else {
            None
        };
        let builder = match &egress {
            Some(policy) => crate::egress::checked_builder(policy.clone()),
            None => reqwest::Client::builder(),
        };
        let client = builder
            .timeout(StdDuration::from_secs(settings.timeout_secs))
            .connect_timeout(StdDuration::from_secs(settings.timeout_secs.min(5)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Portico-Webhooks/", env!("CARGO_PKG_VERSION")))
            .pool_max_idle_per_host(settings.concurrency)
            .build()?;
        Ok(Self { store, settings, cipher, client, egress, id: Uuid::now_v7().simple().to_string() })
    }

    /// Runs until `shutdown` completes; in-flight deliveries finish first.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()> + Send) {
        let this = Arc::new(self);
        let permits = Arc::new(Semaphore::new(this.settings.concurrency));
        let freed = Arc::new(Notify::new());
        let mut listener = this.listen().await;
        tokio::pin!(shutdown);
        tracing::info!(worker = %this.id, "webhook delivery worker started");
        loop {
            if this.store.is_closed() {
                break;
            }
            let available = permits.available_permits();
            // Claim in batches: waiting for a quarter of the slots to free up
            // costs little latency and saves a claim query per delivery.
            let min_batch = (this.settings.concurrency / 4).max(1);
            let mut claimed = 0;
            if available >= min_batch {
                let batch = format!("{}:{}", this.id, Uuid::now_v7().simple());
                let lease = Duration::seconds(this.settings.lease_secs as i64);
                match this.store.claim_deliveries(&batch, available, lease).await {
                    Ok(rows) => {
                        claimed = rows.len();
                        let batch = Arc::<str>::from(batch);
                        for row in rows {
                            let permit = permits.clone().acquire_owned().await.expect("semaphore open");
                            let (this, batch, freed) = (this.clone(), batch.clone(), freed.clone());
                            tokio::spawn(async move {
                                this.deliver(row, &batch).await;
                                drop(permit);
                                freed.notify_one();
                            });
                        }
                    }
                    Err(e) => tracing::error!(error = format!("{e:#}"), "claiming webhook deliveries failed"),
                }
            }
            if claimed > 0 && claimed == available {
                continue; // more may be due right now
            }
            if available < min_batch && permits.available_permits() >= min_batch {
                continue; // slots freed while we were deciding
            }
            let poll = tokio::time::sleep(StdDuration::from_millis(this.settings.poll_ms));
            tokio::select! {
                _ = &mut shutdown => break,
                _ = this.store.deliveries_queued.notified() => {}
                _ = next_notification(&mut listener) => {}
                _ = freed.notified(), if available < min_batch => {}
                _ = poll => {}
            }
        }
        // Drain: wait for every permit to come back.
        let _ = permits.acquire_many(this.settings.concurrency as u32).await;
        tracing::info!(worker = %this.id, "webhook delivery worker stopped");
    }

    async fn listen(&self) -> Option<sqlx::postgres::PgListener> {
        let Pool::Postgres(pool) = &self.store.pool else { return None };
        match sqlx::postgres::PgListener::connect_with(pool).await {
            Ok(mut l) => match l.listen("portico_deliveries").await {
                Ok(()) => Some(l),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN failed; falling back to polling");
                    None
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "no LISTEN connection; falling back to polling");
                None
            }
        }
    }

    #[tracing::instrument(skip_all, fields(event_id = %c.event_id, endpoint_id = %c.endpoint_id))]
    async fn deliver(&self, c: Claimed, batch: &str) {
        let outcome = self.attempt(&c).await;
        let attempts = c.attempts as u32 + 1;
        let next = match outcome.status_code {
            Some(code) if (200..300).contains(&code) => Next::Done,
            Some(410) => {
                let reason = "the receiver answered 410 Gone";
                if let Err(e) = self.store.disable_endpoint(c.endpoint_id, reason).await {
                    tracing::error!(error = format!("{e:#}"), "disabling endpoint failed");
                }
                tracing::warn!("endpoint disabled: {reason}");
                Next::GiveUp
            }
            _ if attempts >= self.settings.max_attempts => Next::GiveUp,
            _ => {
                let delay = backoff(&self.settings, attempts);
                Next::RetryAt(OffsetDateTime::now_utc() + delay)
            }
        };
        tracing::debug!(status = ?outcome.status_code, latency_ms = outcome.latency_ms, ?next, "delivery attempt");
        match self.store.complete_delivery(&c, batch, &outcome, next).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("lease lost before completion; another worker owns this delivery"),
            Err(e) => tracing::error!(error = format!("{e:#}"), "recording delivery outcome failed"),
        }
    }

    async fn attempt(&self, c: &Claimed) -> Outcome {
        let started = Instant::now();
        let fail = |error: String| Outcome {
            status_code: None,
            latency_ms: started.elapsed().as_millis() as i64,
            response: None,
            error: Some(error),
        };
        let secret = match self.cipher.open(&c.secret_enc) {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot decrypt the endpoint secret: {e}")),
        };
        let body = serde_json::to_vec(&Envelope {
            id: c.event_id,
            kind: &c.kind,
            organization_id: c.organization_id,
            occurred_at: c.occurred_at,
            data: &c.data.0,
        })
        .expect("envelope serializes");
        if let Some(policy) = &self.egress {
            if let Err(e) = policy.parse_url(&c.url, false) {
                return fail(e.to_string());
            }
        }
        let msg_id = c.event_id.to_string();
        let ts = OffsetDateTime::now_utc().unix_timestamp();
        let signature = match signing::sign(secret.expose_secret(), &msg_id, ts, &body) {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot sign: {e}")),
        };
        let sent = self
            .client
            .post(&c.url)
            .header("content-type", "application/json")
            .header("webhook-id", &msg_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await;
        match sent {
            Err(e) => {
                let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
                while let Some(s) = source {
                    if let Some(refused) = s.downcast_ref::<crate::egress::EgressError>() {
                        return fail(refused.to_string());
                    }
                    source = s.source();
                }
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                fail(format!("{kind}: {e}"))
            }
            Ok(mut response) => {
                let status = response.status().as_u16();
                let mut snippet = Vec::new();
                while snippet.len() < 1024 {
                    match tokio::time::timeout(StdDuration::from_secs(2), response.chunk()).await {
                        Ok(Ok(Some(chunk))) => snippet.extend_from_slice(&chunk),
                        _ => break,
                    }
                }
                snippet.truncate(1024);
                Outcome {
                    status_code: Some(status),
                    latency_ms: started.elapsed().as_millis() as i64,
                    response: Some(String::from_utf8_lossy(&snippet).into_owned()),
                    error: (!(200..300).contains(&status)).then(|| format!("receiver answered {status}")),
                }
            }
        }
    }
}

async fn next_notification(listener: &mut Option<sqlx::postgres::PgListener>) {
    match listener {
        Some(l) => {
            if let Err(e) = l.recv().await {
                // Pool closed (shutdown) or connection trouble: release the
                // connection and carry on by polling.
                tracing::debug!(error = %e, "LISTEN connection ended; polling instead");
                *listener = None;
            }
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let s = WebhookSettings { retry_base_ms: 1000, retry_max_delay_secs: 10, ..Default::default() };
        for (attempt, nominal) in [(1u32, 1000u64), (2, 2000), (3, 4000), (4, 8000), (5, 10000), (30, 10000)] {
            let d = backoff(&s, attempt).as_millis() as u64;
            assert!(d >= nominal * 8 / 10 && d <= nominal * 12 / 10, "attempt {attempt}: {d}");
        }
        // Default schedule spans about three days.
        let d = WebhookSettings::default();
        let total: u64 = (1..d.max_attempts).map(|a| backoff(&WebhookSettings { ..d.clone() }, a).as_secs()).sum();
        assert!((2 * 86400..5 * 86400).contains(&total), "{total} s");
    }

    #[test]
    fn uuid_bounds_bracket_v7_ids_of_that_millisecond() {
        let id = Uuid::now_v7();
        let ts = id.get_timestamp().unwrap();
        let (secs, nanos) = ts.to_unix();
        let t = OffsetDateTime::from_unix_timestamp_nanos(secs as i128 * 1_000_000_000 + nanos as i128).unwrap();
        assert!(uuid_floor(t) <= id && id <= uuid_ceil(t));
        assert!(uuid_ceil(t - Duration::milliseconds(1)) < id);
    }
}
