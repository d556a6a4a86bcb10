//! Certificate expiry warnings: an hourly check in every replica (the
//! store decides, per certificate, which replica records the event).

use time::OffsetDateTime;

use crate::sso::CERTIFICATE_WARNING;
use crate::store::Store;

/// Checks certificate expiry hourly until `stop` completes.
pub async fn run_certificate_worker(store: Store, stop: impl std::future::Future<Output = ()>) {
    tokio::pin!(stop);
    loop {
        if let Err(e) = store.warn_expiring_certificates(OffsetDateTime::now_utc(), CERTIFICATE_WARNING).await {
            tracing::warn!(error = format!("{e:#}"), "certificate expiry check failed");
        }
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
        }
    }
}
