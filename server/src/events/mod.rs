//! Events beyond the outbox table: the catalog, webhook endpoints, Standard
//! Webhooks signing, the delivery worker, and the live stream.
//!
//! The outbox itself (`insert_event!`, `list_events`) lives in
//! `db/events.rs` because every store function that changes state uses it.

pub mod delivery;
pub mod signing;
pub mod webhooks;

/// Every event type Portico emits. Webhook subscriptions must match at least
/// one of them, so a typo cannot silently subscribe to nothing.
pub const CATALOG: &[&str] = &[
    "organization.created",
    "organization.updated",
    "organization.deleted",
    "sso.enabled",
    "sso.disabled",
    "connection.created",
    "connection.updated",
    "connection.deleted",
    "connection.certificate_expiring",
    "directory.enabled",
    "directory.disabled",
    "directory.user.created",
    "directory.user.updated",
    "directory.user.deleted",
    "directory.group.created",
    "directory.group.updated",
    "directory.group.deleted",
    "directory.group.user_added",
    "directory.group.user_removed",
    "domain.verified",
    "domain.verification_failed",
    "portal.link.created",
    "portal.session.started",
    "portal.link.revoked",
    "portal.session.revoked",
    "authentication.sso_succeeded",
    "authentication.sso_failed",
];
