//! The per-directory SCIM request log: method, path, status, latency and the
//! error detail of every request an IdP makes, so the IT admin can see in the
//! portal why provisioning fails.
//!
//! Requests only hand an entry to a channel; one task per replica writes them
//! in batches (one transaction per batch) and trims each directory to its
//! newest [`KEEP_PER_DIRECTORY`] rows. Under overload entries are dropped,
//! never the SCIM request itself. A crash loses at most one batch window.

use std::collections::HashMap;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::db::{BeginWrite, Store, StoreError, with_pool};

/// Rows kept per directory.
pub const KEEP_PER_DIRECTORY: i64 = 1000;
/// Longest path (with query) stored.
const MAX_PATH: usize = 400;
/// Longest error detail stored.
const MAX_DETAIL: usize = 300;
/// Entries buffered between batches before new ones are dropped.
const QUEUE: usize = 8192;
/// How long the writer waits to fill a batch.
const WINDOW: Duration = Duration::from_millis(250);
/// How often one directory is trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(30);

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct ScimRequest {
    #[serde(skip)]
    pub directory_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
    pub method: String,
    pub path: String,
    pub status: i32,
    pub latency_us: i64,
    pub detail: Option<String>,
}

impl ScimRequest {
    pub fn new(directory_id: Uuid, method: &str, path: &str, status: u16, latency: Duration) -> Self {
        Self {
            directory_id,
            occurred_at: OffsetDateTime::now_utc(),
            method: method.to_owned(),
            path: truncate(path, MAX_PATH),
            status: i32::from(status),
            latency_us: i64::try_from(latency.as_micros()).unwrap_or(i64::MAX),
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: Option<&str>) -> Self {
        self.detail = detail.map(|d| truncate(d, MAX_DETAIL));
        self
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// The error detail a SCIM error response carries, for the log.
#[derive(Debug, Clone)]
pub struct LoggedDetail(pub String);

/// Hands entries to the writer task.
#[derive(Debug, Clone)]
pub struct RequestLog {
    tx: mpsc::Sender<ScimRequest>,
}

impl RequestLog {
    /// A log and the writer that drains it; the writer ends (after a last
    /// flush) once every `RequestLog` clone is dropped.
    pub fn new(store: Store) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self { tx }, write_batches(store, rx))
    }

    /// Queues an entry; drops it when the writer is behind.
    pub fn record(&self, entry: ScimRequest) {
        if self.tx.try_send(entry).is_err() {
            tracing::warn!("SCIM request log is behind; entry dropped");
        }
    }
}

async fn write_batches(store: Store, mut rx: mpsc::Receiver<ScimRequest>) {
    let mut trimmed: HashMap<Uuid, tokio::time::Instant> = HashMap::new();
    let mut batch = Vec::new();
    loop {
        let Some(first) = rx.recv().await else { break };
        batch.push(first);
        let deadline = tokio::time::sleep(WINDOW);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                more = rx.recv_many(&mut batch, 1024) => if more == 0 { break },
            }
        }
        if let Err(e) = store.insert_scim_requests(&batch).await {
            tracing::warn!(error = format!("{e:#}"), entries = batch.len(), "SCIM request log write failed");
        }
        let now = tokio::time::Instant::now();
        let mut due: Vec<Uuid> = batch.iter().map(|e| e.directory_id).collect();
        due.sort_unstable();
        due.dedup();
        for dir in due {
            if trimmed.get(&dir).is_some_and(|t| now.duration_since(*t) < TRIM_EVERY) {
                continue;
            }
            trimmed.insert(dir, now);
            if let Err(e) = store.trim_scim_requests(dir, KEEP_PER_DIRECTORY).await {
                tracing::warn!(error = format!("{e:#}"), "SCIM request log trim failed");
            }
        }
        batch.clear();
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
                if !known.contains_key(&e.directory_id) {
                    let exists: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM directories WHERE id = $1")
                        .bind(e.directory_id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    known.insert(e.directory_id, exists.is_some());
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
        with_pool!(self, |pool| {
            Ok(sqlx::query_as(
                r#"
                SELECT directory_id, occurred_at, method, path, status, latency_us, detail FROM scim_requests
                WHERE directory_id = $1 ORDER BY id DESC LIMIT $2
                "#,
            )
            .bind(directory)
            .bind(limit)
            .fetch_all(pool)
            .await?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_cut_on_a_char_boundary() {
        let path = format!("/Users?filter={}", "é".repeat(300));
        let cut = truncate(&path, MAX_PATH);
        assert!(cut.len() <= MAX_PATH + '…'.len_utf8());
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("/Users", MAX_PATH), "/Users");
    }
}
