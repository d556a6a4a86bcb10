//! The per-directory SCIM request log as a service: requests only hand an
//! entry to a channel; one task per replica writes them in batches (one
//! transaction per batch) and trims each directory to its newest
//! [`KEEP_PER_DIRECTORY`] rows. Under overload entries are dropped, never
//! the SCIM request itself. A crash loses at most one batch window.

use std::collections::HashMap;
use std::time::Duration;

use tokio::sync::mpsc;
use uuid::Uuid;

use crate::scim::requests::{KEEP_PER_DIRECTORY, ScimRequest};
use crate::store::Store;

/// Entries buffered between batches before new ones are dropped.
const QUEUE: usize = 8192;
/// How long the writer waits to fill a batch.
const WINDOW: Duration = Duration::from_millis(250);
/// How often one directory is trimmed.
const TRIM_EVERY: Duration = Duration::from_secs(30);

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
