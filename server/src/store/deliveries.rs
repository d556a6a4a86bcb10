//! Webhook deliveries and their attempts: one row per (event, endpoint),
//! created in the same transaction as the event (`Tx::record`), claimed by a
//! worker with a lease (PostgreSQL: `FOR UPDATE SKIP LOCKED`, so replicas
//! never claim the same row; a crashed worker's claims become due again when
//! the lease expires), and updated after every attempt. The worker that sends
//! them is `services/delivery.rs`.

use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{BeginWrite, Pool, Store, StoreError, with_pool};
use crate::events::DeliveryStatus;

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

/// A delivery as listed by the API: one event to one endpoint.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = WebhookDelivery)]
pub struct DeliveryInfo {
    pub event_id: Uuid,
    #[sqlx(rename = "type")]
    #[serde(rename = "event_type")]
    #[schema(example = "sso.enabled")]
    pub kind: String,
    pub endpoint_id: Uuid,
    #[sqlx(try_from = "String")]
    #[schema(schema_with = DeliveryStatus::schema)]
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: i32,
    #[serde(with = "time::serde::rfc3339")]
    pub next_attempt_at: OffsetDateTime,
    /// HTTP status of the last attempt's answer, if one came.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub completed_at: Option<OffsetDateTime>,
}

/// One recorded delivery attempt of an event to an endpoint.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[schema(as = DeliveryAttempt)]
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
            Next::Done => (DeliveryStatus::Succeeded, now, Some(now)),
            Next::RetryAt(at) => (DeliveryStatus::Pending, at, None),
            Next::GiveUp => (DeliveryStatus::Failed, now, Some(now)),
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
            .bind(status.as_str())
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
        status: Option<DeliveryStatus>,
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
            .bind(status.map(DeliveryStatus::as_str))
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

/// Other replicas' `NOTIFY portico_deliveries` (PostgreSQL), or nothing.
pub struct DeliveryListener(Option<sqlx::postgres::PgListener>);

impl Store {
    /// Listens for deliveries queued by any replica (PostgreSQL's insert
    /// trigger). On SQLite, or when LISTEN fails, the listener never fires
    /// and the worker polls.
    pub async fn listen_for_deliveries(&self) -> DeliveryListener {
        let Pool::Postgres(pool) = &self.pool else { return DeliveryListener(None) };
        let listener = match sqlx::postgres::PgListener::connect_with(pool).await {
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
        };
        DeliveryListener(listener)
    }
}

impl DeliveryListener {
    /// Completes on the next notification; never, without a connection.
    pub async fn next(&mut self) {
        match &mut self.0 {
            Some(l) => {
                if let Err(e) = l.recv().await {
                    // Pool closed (shutdown) or connection trouble: release the
                    // connection and carry on by polling.
                    tracing::debug!(error = %e, "LISTEN connection ended; polling instead");
                    self.0 = None;
                }
            }
            None => std::future::pending().await,
        }
    }
}
