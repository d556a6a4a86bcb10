//! `scim_requests`: the per-directory SCIM request log (written in
//! batches by `services::scim_log`).

use std::collections::HashMap;

use time::OffsetDateTime;
use uuid::Uuid;

use super::{BeginWrite, Store, StoreError, with_pool};
use crate::scim::requests::ScimRequest;

#[derive(sqlx::FromRow)]
struct RequestRow {
    directory_id: Uuid,
    occurred_at: OffsetDateTime,
    method: String,
    path: String,
    status: i32,
    latency_us: i64,
    detail: Option<String>,
}

impl From<RequestRow> for ScimRequest {
    fn from(r: RequestRow) -> Self {
        ScimRequest {
            directory_id: r.directory_id,
            occurred_at: r.occurred_at,
            method: r.method,
            path: r.path,
            status: r.status,
            latency_us: r.latency_us,
            detail: r.detail,
        }
    }
}

impl Store {
    /// Writes entries of existing directories (others, e.g. 401s for made-up
    /// directory ids, are skipped) in one transaction.
    pub async fn insert_scim_requests(&self, entries: &[ScimRequest]) -> Result<(), StoreError> {
        with_pool!(self, |pool| {
            let mut tx = pool.begin_write().await?;
            let mut known: HashMap<Uuid, bool> = HashMap::new();
            for e in entries {
                if let std::collections::hash_map::Entry::Vacant(slot) = known.entry(e.directory_id) {
                    let exists: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM directories WHERE id = $1")
                        .bind(e.directory_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    slot.insert(exists.is_some());
                }
            }
            let keep: Vec<&ScimRequest> = entries.iter().filter(|e| known[&e.directory_id]).collect();
            // One multi-row INSERT per chunk (bind limits: 8 per row).
            for chunk in keep.chunks(1000) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO scim_requests (id, directory_id, occurred_at, method, path, status, latency_us, detail) ",
                );
                insert.push_values(chunk, |mut row, e| {
                    row.push_bind(Uuid::now_v7())
                        .push_bind(e.directory_id)
                        .push_bind(e.occurred_at)
                        .push_bind(e.method.clone())
                        .push_bind(e.path.clone())
                        .push_bind(e.status)
                        .push_bind(e.latency_us)
                        .push_bind(e.detail.clone());
                });
                insert.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Keeps the newest `keep` entries of `directory`.
    pub async fn trim_scim_requests(&self, directory: Uuid, keep: i64) -> Result<u64, StoreError> {
        with_pool!(self, |pool| {
            Ok(sqlx::query(
                r#"
                DELETE FROM scim_requests WHERE directory_id = $1 AND id < (
                    SELECT id FROM scim_requests WHERE directory_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2
                )
                "#,
            )
            .bind(directory)
            .bind(keep - 1)
            .execute(pool)
            .await?
            .rows_affected())
        })
    }

    /// The newest `limit` entries of `directory`, newest first.
    pub async fn scim_requests(&self, directory: Uuid, limit: i64) -> Result<Vec<ScimRequest>, StoreError> {
        let rows: Vec<RequestRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                r#"
                SELECT directory_id, occurred_at, method, path, status, latency_us, detail FROM scim_requests
                WHERE directory_id = $1 ORDER BY id DESC LIMIT $2
                "#,
            )
            .bind(directory)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(ScimRequest::from).collect())
    }
}
