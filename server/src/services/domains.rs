//! Checking domains: on an admin's request and in the background worker
//! that re-checks pending domains in every replica.

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::dns::DnsChecker;
use crate::config::DomainSettings;
use crate::domains::{Domain, Policy, judge};
use crate::orgs::DomainState;
use crate::store::{Store, StoreError};

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

impl DomainService {
    /// Checks domain `id` now and records the result (`manual`: asked for
    /// by an admin, not the background worker). The lookup happens outside
    /// any transaction: it may take seconds.
    pub async fn check(&self, store: &Store, id: Uuid, manual: bool) -> Result<Option<Domain>, StoreError> {
        let Some(before) = store.domain_by_id(&self.policy, id).await? else { return Ok(None) };
        if before.state == DomainState::Verified {
            return Ok(Some(before));
        }
        let lookup = self.dns.txt(&before.verification.name).await;
        let verdict = judge(&lookup, &before.verification);
        tracing::info!(domain = %before.domain, org_id = %before.organization_id, ?verdict, manual, "domain checked");
        store.apply_domain_check(&self.policy, &before, &verdict, OffsetDateTime::now_utc()).await
    }
}

/// Background re-checks of pending domains, in every replica; claims keep
/// replicas from checking the same domain at once.
pub async fn run_worker(
    store: Store,
    service: std::sync::Arc<DomainService>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        if store.is_closed() {
            break;
        }
        match store.claim_due_domains(20, Duration::minutes(5)).await {
            Ok(ids) => {
                for id in ids {
                    if let Err(e) = service.check(&store, id, false).await {
                        tracing::error!(error = format!("{e:#}"), domain_id = %id, "domain re-check failed");
                    }
                }
            }
            Err(e) => tracing::error!(error = format!("{e:#}"), "claiming due domain checks failed"),
        }
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tokio::time::sleep(service.poll) => {}
        }
    }
}
