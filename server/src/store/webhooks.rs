//! `webhook_endpoints` and `webhook_subscriptions`: where events go, which
//! types, and the (encrypted) signing secret.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{BeginWrite, Store, StoreError, with_pool};
use crate::events::webhooks::{Endpoint, EndpointUpdate, EventPattern, join_patterns};

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: Uuid,
    url: String,
    description: Option<String>,
    event_types: String,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<EndpointRow> for Endpoint {
    fn from(r: EndpointRow) -> Self {
        Endpoint {
            object: "webhook_endpoint",
            id: r.id,
            url: r.url,
            description: r.description,
            event_types: r.event_types.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            enabled: r.enabled,
            disabled_reason: r.disabled_reason,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

const ENDPOINT_COLUMNS: &str = "id, url, description, event_types, enabled, disabled_reason, created_at, updated_at";

/// Replaces the subscription rows of `$id` with `$patterns` inside `$tx`.
macro_rules! write_subscriptions {
    ($tx:expr, $id:expr, $patterns:expr) => {{
        sqlx::query("DELETE FROM webhook_subscriptions WHERE endpoint_id = $1").bind($id).execute(&mut *$tx).await?;
        for p in $patterns {
            sqlx::query(
                "INSERT INTO webhook_subscriptions (endpoint_id, pattern) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind($id)
            .bind(p.to_like())
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

impl Store {
    /// Creates an endpoint with an already encrypted secret.
    pub async fn create_endpoint(
        &self,
        url: &str,
        description: Option<&str>,
        patterns: &[EventPattern],
        enabled: bool,
        secret_enc: &str,
    ) -> Result<Endpoint, StoreError> {
        let id = Uuid::now_v7();
        let now = OffsetDateTime::now_utc();
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            sqlx::query(
                r#"
                INSERT INTO webhook_endpoints
                    (id, url, description, event_types, enabled, secret_enc, created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                "#,
            )
            .bind(id)
            .bind(url)
            .bind(description)
            .bind(join_patterns(patterns))
            .bind(enabled)
            .bind(secret_enc)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            write_subscriptions!(tx, id, patterns);
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        Ok(self.get_endpoint(id).await?.expect("endpoint just created"))
    }

    pub async fn get_endpoint(&self, id: Uuid) -> Result<Option<Endpoint>, StoreError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
        let row: Option<EndpointRow> = with_pool!(self, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(pool).await
        })?;
        Ok(row.map(Endpoint::from))
    }

    pub async fn list_endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY id");
        let rows: Vec<EndpointRow> =
            with_pool!(self, |pool| { sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).fetch_all(pool).await })?;
        Ok(rows.into_iter().map(Endpoint::from).collect())
    }

    /// Applies `update`; `None` if the endpoint does not exist. Re-enabling
    /// clears `disabled_reason`.
    pub async fn update_endpoint(&self, id: Uuid, update: EndpointUpdate) -> Result<Option<Endpoint>, StoreError> {
        let now = OffsetDateTime::now_utc();
        if self.get_endpoint(id).await?.is_none() {
            return Ok(None);
        }
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            if let Some(url) = &update.url {
                sqlx::query("UPDATE webhook_endpoints SET url = $2 WHERE id = $1")
                    .bind(id)
                    .bind(url)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(description) = &update.description {
                sqlx::query("UPDATE webhook_endpoints SET description = $2 WHERE id = $1")
                    .bind(id)
                    .bind(description.as_deref())
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(patterns) = &update.event_types {
                sqlx::query("UPDATE webhook_endpoints SET event_types = $2 WHERE id = $1")
                    .bind(id)
                    .bind(join_patterns(patterns))
                    .execute(&mut *tx)
                    .await?;
                write_subscriptions!(tx, id, patterns);
            }
            if let Some(enabled) = update.enabled {
                sqlx::query(
                    "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = CASE WHEN $2 THEN NULL ELSE disabled_reason END WHERE id = $1",
                )
                .bind(id)
                .bind(enabled)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("UPDATE webhook_endpoints SET updated_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        self.get_endpoint(id).await
    }

    /// Deletes an endpoint and its pending deliveries.
    pub async fn delete_endpoint(&self, id: Uuid) -> Result<bool, StoreError> {
        let n = with_pool!(self, |pool| {
            sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Stores a new encrypted secret; `false` if no such endpoint.
    pub async fn set_endpoint_secret(&self, id: Uuid, secret_enc: &str) -> Result<bool, StoreError> {
        let n = with_pool!(self, |pool| {
            sqlx::query("UPDATE webhook_endpoints SET secret_enc = $2, updated_at = $3 WHERE id = $1")
                .bind(id)
                .bind(secret_enc)
                .bind(OffsetDateTime::now_utc())
                .execute(pool)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Disables an endpoint because of `reason` (e.g. 410 Gone).
    pub async fn disable_endpoint(&self, id: Uuid, reason: &str) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            sqlx::query(
                "UPDATE webhook_endpoints SET enabled = $2, disabled_reason = $3, updated_at = $4 WHERE id = $1",
            )
            .bind(id)
            .bind(false)
            .bind(reason)
            .bind(OffsetDateTime::now_utc())
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }
}
