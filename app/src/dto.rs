//! Serializable types shared by the server and the browser.

use serde::{Deserialize, Serialize};

/// What the portal needs to know about the deployment before any session
/// exists: who runs it, for branding and for "ask your vendor" messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalInfo {
    /// Display name of the SaaS vendor operating this Portico.
    pub vendor_name: String,
    /// Where the "Back to vendor" link points, if configured.
    pub vendor_url: Option<String>,
}

/// What a portal link lets the IT admin do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Intent {
    /// Configure SAML/OIDC single sign-on.
    Sso,
    /// Connect a SCIM directory.
    Dsync,
    /// Verify email domains by DNS.
    DomainVerification,
}

impl Intent {
    /// Every intent, in navigation order.
    pub const ALL: [Intent; 3] = [Intent::Sso, Intent::Dsync, Intent::DomainVerification];

    /// Wire name, as in the API (`sso`, `dsync`, `domain_verification`).
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Sso => "sso",
            Intent::Dsync => "dsync",
            Intent::DomainVerification => "domain_verification",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.as_str() == s)
    }

    /// Portal path of the intent's section.
    pub fn path(self) -> &'static str {
        match self {
            Intent::Sso => "/portal/sso",
            Intent::Dsync => "/portal/directory-sync",
            Intent::DomainVerification => "/portal/domains",
        }
    }

    /// Navigation label.
    pub fn title(self) -> &'static str {
        match self {
            Intent::Sso => "Single sign-on",
            Intent::Dsync => "Directory sync",
            Intent::DomainVerification => "Domain verification",
        }
    }

    /// One-sentence explanation for the IT admin.
    pub fn summary(self) -> &'static str {
        match self {
            Intent::Sso => {
                "Let your users sign in with your identity provider (Okta, Microsoft Entra ID, Google Workspace or any SAML/OIDC provider)."
            }
            Intent::Dsync => {
                "Provision and deprovision users and groups automatically from your identity provider over SCIM 2.0."
            }
            Intent::DomainVerification => {
                "Prove that your organization owns its email domains by publishing a DNS TXT record."
            }
        }
    }
}

/// Branding applied to the portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Branding {
    pub vendor_name: String,
    pub logo_url: Option<String>,
    /// `#rrggbb`, already validated by the server.
    pub accent_color: Option<String>,
}

/// The portal session of the current visitor, as the UI sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalSession {
    pub organization_id: String,
    pub organization_name: String,
    pub intents: Vec<Intent>,
    pub branding: Branding,
    /// Where "Back to vendor" leads.
    pub return_url: Option<String>,
    /// Where to go when setup is finished.
    pub success_url: Option<String>,
    /// Milliseconds since the Unix epoch when the session ends at the latest
    /// (lifetime or idle timeout, whichever comes first).
    pub expires_at_ms: i64,
    /// Whether the session was started inside an iframe.
    pub embedded: bool,
    /// Origins allowed to embed the portal: `postMessage` targets.
    pub embed_origins: Vec<String>,
}

/// A stored or sent name that is not one of a closed set's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    pub set: &'static str,
    pub value: String,
}

impl std::fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} is not a {}", self.value, self.set)
    }
}

impl std::error::Error for UnknownValue {}

/// Lifecycle of an SSO connection: a draft signs nobody in (Test sign-in
/// works), an active one signs users in, an inactive one no longer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    Draft,
    Active,
    Inactive,
}

impl ConnectionState {
    pub const ALL: [ConnectionState; 3] = [ConnectionState::Draft, ConnectionState::Active, ConnectionState::Inactive];

    /// Wire and stored name (`draft`, `active`, `inactive`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Draft => "draft",
            ConnectionState::Active => "active",
            ConnectionState::Inactive => "inactive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Badge label.
    pub fn title(self) -> &'static str {
        match self {
            ConnectionState::Draft => "Draft",
            ConnectionState::Active => "Active",
            ConnectionState::Inactive => "Inactive",
        }
    }
}

impl TryFrom<String> for ConnectionState {
    type Error = UnknownValue;
    fn try_from(s: String) -> Result<Self, UnknownValue> {
        Self::parse(&s).ok_or(UnknownValue { set: "connection state", value: s })
    }
}

/// Lifecycle of a SCIM directory: pending until its IdP's first
/// authenticated request, then active; disabled when turned off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryState {
    Pending,
    Active,
    Disabled,
}

impl DirectoryState {
    pub const ALL: [DirectoryState; 3] = [DirectoryState::Pending, DirectoryState::Active, DirectoryState::Disabled];

    /// Wire and stored name (`pending`, `active`, `disabled`).
    pub fn as_str(self) -> &'static str {
        match self {
            DirectoryState::Pending => "pending",
            DirectoryState::Active => "active",
            DirectoryState::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Badge label.
    pub fn title(self) -> &'static str {
        match self {
            DirectoryState::Pending => "Waiting for first sync",
            DirectoryState::Active => "Active",
            DirectoryState::Disabled => "Disabled",
        }
    }
}

impl TryFrom<String> for DirectoryState {
    type Error = UnknownValue;
    fn try_from(s: String) -> Result<Self, UnknownValue> {
        Self::parse(&s).ok_or(UnknownValue { set: "directory state", value: s })
    }
}

/// Verification state of a domain: pending until its TXT record is found,
/// then verified; failed when the deadline passed without it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DomainState {
    Pending,
    Verified,
    Failed,
}

impl DomainState {
    pub const ALL: [DomainState; 3] = [DomainState::Pending, DomainState::Verified, DomainState::Failed];

    /// Wire and stored name (`pending`, `verified`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            DomainState::Pending => "pending",
            DomainState::Verified => "verified",
            DomainState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Badge label.
    pub fn title(self) -> &'static str {
        match self {
            DomainState::Pending => "Pending",
            DomainState::Verified => "Verified",
            DomainState::Failed => "Failed",
        }
    }
}

impl TryFrom<String> for DomainState {
    type Error = UnknownValue;
    fn try_from(s: String) -> Result<Self, UnknownValue> {
        Self::parse(&s).ok_or(UnknownValue { set: "domain state", value: s })
    }
}

/// Result of looking up the visitor's session.
// One per page load, moved once: boxing the session would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionState {
    /// A valid session.
    Active(PortalSession),
    /// No session cookie, or an unknown/ended one.
    Missing,
}

/// A domain as the portal shows it to the IT admin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalDomain {
    pub domain: String,
    pub state: DomainState,
    /// Fully qualified record name.
    pub record_name: String,
    /// The label relative to the domain (what most DNS consoles ask for).
    pub record_host: String,
    pub record_value: String,
    pub checks: i64,
    /// RFC 3339.
    pub last_checked_at: Option<String>,
    pub last_result: Option<String>,
    pub next_check_at: Option<String>,
    /// When a pending domain fails if still unverified.
    pub expires_at: Option<String>,
}

/// A SCIM directory as the portal shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalDirectory {
    pub id: String,
    pub name: String,
    pub provider: String,
    pub state: DirectoryState,
    pub scim_base_url: String,
    /// RFC 3339.
    pub last_request_at: Option<String>,
    /// Only right after creation or rotation.
    pub bearer_token: Option<String>,
    /// Users, groups, request log and last sync (in listings).
    pub activity: Option<PortalDirectoryActivity>,
}

/// What a directory's IdP has provisioned and asked lately: the portal's
/// troubleshooting view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalDirectoryActivity {
    /// Newest successful SCIM request (RFC 3339).
    pub last_sync_at: Option<String>,
    pub user_count: i64,
    pub active_user_count: i64,
    /// The first users by user name.
    pub users: Vec<PortalDirectoryUser>,
    pub group_count: i64,
    /// The first groups by name.
    pub groups: Vec<PortalDirectoryGroup>,
    /// Newest first.
    pub requests: Vec<PortalScimRequest>,
}

/// A provisioned user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalDirectoryUser {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// `active` or `inactive`.
    pub state: String,
}

/// A provisioned group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalDirectoryGroup {
    pub name: String,
    pub members: i64,
}

/// One SCIM request of the directory's IdP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalScimRequest {
    /// RFC 3339.
    pub at: String,
    pub method: String,
    /// Relative to the SCIM base URL, with the query.
    pub path: String,
    pub status: u16,
    pub latency_ms: String,
    /// The SCIM error detail of a failed request.
    pub detail: Option<String>,
}

/// An SSO connection as the portal shows it (never a secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalConnection {
    pub id: String,
    pub name: String,
    /// `saml` or `oidc`.
    pub kind: String,
    /// `okta`, `entra`, `google` or `generic`.
    pub provider: String,
    pub state: ConnectionState,
    /// IdP details are complete: Test sign-in and Activate are possible.
    pub configured: bool,
    /// What to paste into the IdP.
    pub sp_entity_id: Option<String>,
    pub acs_url: Option<String>,
    pub sp_metadata_url: Option<String>,
    pub redirect_uri: Option<String>,
    /// What the IdP told us (SAML).
    pub idp_entity_id: String,
    pub idp_sso_url: String,
    pub metadata_url: Option<String>,
    /// Subject and expiry of each IdP signing certificate.
    pub certificates: Vec<String>,
    pub allow_idp_initiated: bool,
    /// OIDC.
    pub issuer: String,
    pub client_id: String,
    /// Extra scopes, space-separated.
    pub scopes: String,
    pub has_client_secret: bool,
    pub map_email: String,
    pub map_first_name: String,
    pub map_last_name: String,
    pub map_groups: String,
    /// RFC 3339.
    pub certificate_expires_at: Option<String>,
    /// A warning when a certificate expires within 30 days (or has expired).
    pub certificate_warning: Option<String>,
    pub tested_at: Option<String>,
    /// Newest first.
    pub attempts: Vec<PortalAttempt>,
}

/// One sign-in attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalAttempt {
    pub at: String,
    /// `login` or `test`.
    pub purpose: String,
    /// `succeeded` or `failed`.
    pub outcome: String,
    pub email: Option<String>,
    pub reason: Option<String>,
}

/// IdP details entered in the wizard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalConnectionForm {
    pub metadata_url: Option<String>,
    pub metadata_xml: Option<String>,
    pub idp_entity_id: Option<String>,
    pub idp_sso_url: Option<String>,
    pub idp_certificate: Option<String>,
    pub allow_idp_initiated: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Option<String>,
    pub map_email: Option<String>,
    pub map_first_name: Option<String>,
    pub map_last_name: Option<String>,
    pub map_groups: Option<String>,
}

/// The outcome of a Test sign-in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortalTestResult {
    pub connection_id: String,
    pub succeeded: bool,
    /// The profile (JSON, pretty) when it succeeded.
    pub profile: Option<String>,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub groups: Vec<String>,
    /// Why it failed.
    pub reason: Option<String>,
}

/// `true` for absolute `https://` and `http://` URLs only: the UI navigates
/// to nothing else (no `javascript:`, `data:` or relative tricks).
pub fn is_http_url(url: &str) -> bool {
    let lower = url.trim_start().get(..8).unwrap_or_default().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && url.len() > "http://".len()
        && !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

#[cfg(test)]
mod url_tests {
    use super::is_http_url;

    #[test]
    fn only_http_urls_are_navigated_to() {
        assert!(is_http_url("https://idp.example/authorize?x=1"));
        assert!(is_http_url("http://127.0.0.1:9/sso"));
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,x",
            "//evil.example",
            "/portal",
            "https://a b",
            "http://",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }
}

#[cfg(test)]
mod state_tests {
    use super::{ConnectionState, DirectoryState, DomainState};

    /// Stored TEXT, JSON and the parser agree for every value, and unknown
    /// names are refused.
    #[test]
    fn closed_sets_round_trip_through_their_names() {
        for s in ConnectionState::ALL {
            assert_eq!(ConnectionState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
            assert_eq!(ConnectionState::try_from(s.as_str().to_owned()), Ok(s));
        }
        for s in DirectoryState::ALL {
            assert_eq!(DirectoryState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        for s in DomainState::ALL {
            assert_eq!(DomainState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        let e = ConnectionState::try_from("enabled".to_owned()).unwrap_err();
        assert_eq!(e.to_string(), "\"enabled\" is not a connection state");
        assert_eq!(DirectoryState::parse("Active"), None);
    }
}
