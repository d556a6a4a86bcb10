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
