//! The event outbox: every state change writes its event in the same
//! transaction as the change, so an event exists if and only if the change
//! committed. Delivery (webhooks, streams) reads from this table.

use time::OffsetDateTime;
use uuid::Uuid;

pub use crate::events::{EventKind, NewEvent};

/// Inserts an event (`$1` id, `$2` type, `$3` organization, `$4` time,
/// `$5` data).
pub(crate) const INSERT_EVENT: &str = r#"
    INSERT INTO events (id, type, organization_id, occurred_at, data)
    VALUES ($1, $2, $3, $4, $5)
"#;

/// Queues one pending delivery of event `$1` (type `$2`, time `$3`) per
/// enabled webhook endpoint subscribed to its type.
pub(crate) const FAN_OUT: &str = r#"
    INSERT INTO webhook_deliveries (event_id, endpoint_id, status, attempts, next_attempt_at, created_at)
    SELECT DISTINCT $1, e.id, 'pending', 0, $3, $3
    FROM webhook_endpoints e JOIN webhook_subscriptions s ON s.endpoint_id = e.id
    WHERE e.enabled AND $2 LIKE s.pattern ESCAPE '\'
    ON CONFLICT DO NOTHING
"#;

/// A stored event as read back.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct StoredEvent {
    pub id: Uuid,
    #[sqlx(rename = "type")]
    #[serde(rename = "type")]
    pub kind: String,
    pub organization_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub data: sqlx::types::Json<serde_json::Value>,
}

/// Filters for reading the event log.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// SQL `LIKE` patterns (see `EventPattern::to_like`); empty: all types.
    pub type_likes: Vec<String>,
    pub organization_id: Option<Uuid>,
    /// Only events with a greater id (cursor).
    pub after: Option<Uuid>,
    /// Only events with an id at most this (the settle cut-off).
    pub until: Option<Uuid>,
}

impl crate::store::Store {
    /// Events matching `filter` in id (time) order, at most `limit`.
    pub async fn query_events(
        &self,
        filter: &EventFilter,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, crate::store::StoreError> {
        let mut sql = String::from(
            "SELECT id, type, organization_id, occurred_at, data FROM events \
             WHERE ($1 IS NULL OR organization_id = $1) AND ($2 IS NULL OR id > $2) AND ($3 IS NULL OR id <= $3)",
        );
        if !filter.type_likes.is_empty() {
            let ors: Vec<String> =
                (0..filter.type_likes.len()).map(|i| format!("type LIKE ${} ESCAPE '\\'", i + 5)).collect();
            sql.push_str(&format!(" AND ({})", ors.join(" OR ")));
        }
        sql.push_str(" ORDER BY id LIMIT $4");
        Ok(crate::store::with_pool!(self, |pool| {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(filter.organization_id)
                .bind(filter.after)
                .bind(filter.until)
                .bind(i64::from(limit));
            for like in &filter.type_likes {
                q = q.bind(like);
            }
            q.fetch_all(pool).await
        })?)
    }

    /// One event by id.
    pub async fn get_event(&self, id: Uuid) -> Result<Option<StoredEvent>, crate::store::StoreError> {
        Ok(crate::store::with_pool!(self, |pool| {
            sqlx::query_as("SELECT id, type, organization_id, occurred_at, data FROM events WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Events after `after` (exclusive) in id order, optionally for one
    /// organization; at most `limit`.
    pub async fn list_events(
        &self,
        organization_id: Option<Uuid>,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<StoredEvent>, crate::store::StoreError> {
        Ok(crate::store::with_pool!(self, |pool| {
            sqlx::query_as(
                r#"
                SELECT id, type, organization_id, occurred_at, data FROM events
                WHERE ($1 IS NULL OR organization_id = $1) AND ($2 IS NULL OR id > $2)
                ORDER BY id
                LIMIT $3
                "#,
            )
            .bind(organization_id)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })?)
    }
}
