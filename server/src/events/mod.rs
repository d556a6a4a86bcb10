//! Events as model: the catalog, webhook endpoints, Standard Webhooks
//! signing, and the time bounds of time-ordered event ids. The worker that
//! delivers them is `services/delivery.rs`.
//!
//! The catalog ([`EventKind`]) and [`NewEvent`] are model types; the outbox
//! table itself is written by `store::Tx::record` and read in
//! `store/events.rs`.

pub mod signing;
pub mod webhooks;

use time::OffsetDateTime;
use uuid::Uuid;

/// Declares [`EventKind`]: one variant per event type, with its wire name.
macro_rules! event_kinds {
    ($($variant:ident => $name:literal,)+) => {
        /// Every event type Portico emits: the catalog. The names are part of
        /// the public product contract (docs/events.md) and are stored as
        /// TEXT in `events.type`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum EventKind {
            $(#[serde(rename = $name)] $variant,)+
        }

        impl EventKind {
            /// The whole catalog, in documentation order.
            pub const ALL: &[EventKind] = &[$(EventKind::$variant,)+];

            /// The wire name, e.g. `sso.enabled`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(EventKind::$variant => $name,)+
                }
            }
        }

        impl std::str::FromStr for EventKind {
            type Err = UnknownEventKind;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($name => Ok(EventKind::$variant),)+
                    _ => Err(UnknownEventKind(s.to_owned())),
                }
            }
        }
    };
}

event_kinds! {
    OrganizationCreated => "organization.created",
    OrganizationUpdated => "organization.updated",
    OrganizationDeleted => "organization.deleted",
    SsoEnabled => "sso.enabled",
    SsoDisabled => "sso.disabled",
    ConnectionCreated => "connection.created",
    ConnectionUpdated => "connection.updated",
    ConnectionDeleted => "connection.deleted",
    ConnectionCertificateExpiring => "connection.certificate_expiring",
    DirectoryEnabled => "directory.enabled",
    DirectoryDisabled => "directory.disabled",
    DirectoryUserCreated => "directory.user.created",
    DirectoryUserUpdated => "directory.user.updated",
    DirectoryUserDeleted => "directory.user.deleted",
    DirectoryGroupCreated => "directory.group.created",
    DirectoryGroupUpdated => "directory.group.updated",
    DirectoryGroupDeleted => "directory.group.deleted",
    DirectoryGroupUserAdded => "directory.group.user_added",
    DirectoryGroupUserRemoved => "directory.group.user_removed",
    DomainVerified => "domain.verified",
    DomainVerificationFailed => "domain.verification_failed",
    PortalLinkCreated => "portal.link.created",
    PortalSessionStarted => "portal.session.started",
    PortalLinkRevoked => "portal.link.revoked",
    PortalSessionRevoked => "portal.session.revoked",
    AuthenticationSsoSucceeded => "authentication.sso_succeeded",
    AuthenticationSsoFailed => "authentication.sso_failed",
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventKind(pub String);

/// An event about to be written (to the outbox, `store::Tx::record`).
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Time-ordered id (UUID v7): sorting by id sorts by time.
    pub id: uuid::Uuid,
    pub kind: EventKind,
    pub organization_id: Option<uuid::Uuid>,
    pub occurred_at: time::OffsetDateTime,
    pub data: serde_json::Value,
}

impl NewEvent {
    /// Builds an event of `kind` with `data` serialized now.
    pub fn new(kind: EventKind, organization_id: Option<uuid::Uuid>, data: &impl serde::Serialize) -> Self {
        Self {
            id: uuid::Uuid::now_v7(),
            kind,
            organization_id,
            occurred_at: time::OffsetDateTime::now_utc(),
            data: serde_json::to_value(data).expect("event payloads serialize"),
        }
    }
}

/// Where one webhook delivery stands: pending (due at its next attempt),
/// delivering (claimed by a worker), succeeded, or failed for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivering,
    Succeeded,
    Failed,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 4] =
        [DeliveryStatus::Pending, DeliveryStatus::Delivering, DeliveryStatus::Succeeded, DeliveryStatus::Failed];

    /// Stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivering => "delivering",
            DeliveryStatus::Succeeded => "succeeded",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// The OpenAPI schema: one of the names above.
    pub fn schema() -> utoipa::openapi::schema::Object {
        crate::fields::schema::one_of_words(&Self::ALL.map(Self::as_str))
    }
}

impl TryFrom<String> for DeliveryStatus {
    type Error = app::dto::UnknownValue;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or(app::dto::UnknownValue { set: "delivery status", value: s })
    }
}

/// The smallest UUID v7 at `t` (for time-range replays and cursors).
pub fn uuid_floor(t: OffsetDateTime) -> Uuid {
    let ms = (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    let mut b = [0u8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x70;
    b[8] = 0x80;
    Uuid::from_bytes(b)
}

/// The largest UUID v7 at `t`.
pub fn uuid_ceil(t: OffsetDateTime) -> Uuid {
    let ms = (t.unix_timestamp_nanos() / 1_000_000).max(0) as u64;
    let mut b = [0xffu8; 16];
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = 0x7f;
    b[8] = 0xbf;
    Uuid::from_bytes(b)
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    #[test]
    fn every_delivery_status_round_trips_through_its_name() {
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert!(DeliveryStatus::try_from("done".to_owned()).is_err());
    }

    #[test]
    fn every_kind_round_trips_through_its_name() {
        for kind in EventKind::ALL {
            assert_eq!(kind.as_str().parse::<EventKind>(), Ok(*kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::json!(kind.as_str()));
        }
        assert!("sso.enable".parse::<EventKind>().is_err());
    }

    #[test]
    fn uuid_bounds_bracket_v7_ids_of_that_millisecond() {
        let id = Uuid::now_v7();
        let ts = id.get_timestamp().unwrap();
        let (secs, nanos) = ts.to_unix();
        let t = OffsetDateTime::from_unix_timestamp_nanos(secs as i128 * 1_000_000_000 + nanos as i128).unwrap();
        assert!(uuid_floor(t) <= id && id <= uuid_ceil(t));
        assert!(uuid_ceil(t - Duration::milliseconds(1)) < id);
    }
}
