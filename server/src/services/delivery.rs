//! Webhook delivery: at-least-once, signed, retried with exponential backoff
//! and jitter, safe with many replicas on one PostgreSQL.
//!
//! The worker claims due deliveries (`store/deliveries.rs`), sends each one
//! signed per Standard Webhooks, and records the attempt and what comes next.
//! Workers wake on local commits, on PostgreSQL `NOTIFY portico_deliveries`
//! from other replicas, and on a poll interval.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use secrecy::ExposeSecret;
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use crate::config::WebhookSettings;
use crate::crypto::Cipher;
use crate::events::signing;
use crate::store::Store;
use crate::store::deliveries::{Claimed, Next, Outcome};

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
        let mut listener = this.store.listen_for_deliveries().await;
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
                _ = listener.next() => {}
                _ = freed.notified(), if available < min_batch => {}
                _ = poll => {}
            }
        }
        // Drain: wait for every permit to come back.
        let _ = permits.acquire_many(this.settings.concurrency as u32).await;
        tracing::info!(worker = %this.id, "webhook delivery worker stopped");
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
        if let Some(policy) = &self.egress
            && let Err(e) = policy.parse_url(&c.url, false)
        {
            return fail(e.to_string());
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
}
