//! The seam between the UI and the server's domain logic.
//!
//! Server functions look up a [`Backend`] in the Leptos context. The server
//! crate implements [`PortalBackend`] on top of its store, so the UI crate
//! stays free of SQL and of server-only dependencies.

use std::sync::Arc;

use leptos::prelude::*;

use crate::dto::{
    PortalConnection, PortalConnectionForm, PortalDirectory, PortalDomain, PortalInfo, PortalTestResult, SessionState,
};

/// Name of the portal session cookie.
pub const SESSION_COOKIE: &str = "portico_session";

/// Error text safe to show to an IT admin. The server logs the internal cause
/// before converting to this type.
#[derive(Debug, Clone)]
pub struct BackendError(pub String);

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BackendError {}

/// Operations the portal UI needs from the server.
#[async_trait::async_trait]
pub trait PortalBackend: Send + Sync + 'static {
    /// Deployment-wide information shown before a portal session exists.
    async fn portal_info(&self) -> Result<PortalInfo, BackendError>;

    /// The session that the presented cookie value belongs to, refreshing its
    /// idle timer.
    async fn session(&self, token: Option<&str>) -> Result<SessionState, BackendError>;

    /// Domains of the session's organization (needs the domain intent).
    async fn domains(&self, token: Option<&str>) -> Result<Vec<PortalDomain>, BackendError>;

    /// Adds a domain to verify.
    async fn add_domain(&self, token: Option<&str>, domain: &str) -> Result<PortalDomain, BackendError>;

    /// Checks a domain's TXT record now.
    async fn verify_domain(&self, token: Option<&str>, domain: &str) -> Result<PortalDomain, BackendError>;

    /// Removes a domain.
    async fn remove_domain(&self, token: Option<&str>, domain: &str) -> Result<(), BackendError>;

    /// SCIM directories of the session's organization (needs the dsync intent).
    async fn directories(&self, token: Option<&str>) -> Result<Vec<PortalDirectory>, BackendError>;

    /// Creates a directory; the result carries its bearer token.
    async fn create_directory(
        &self,
        token: Option<&str>,
        name: &str,
        provider: &str,
    ) -> Result<PortalDirectory, BackendError>;

    /// Replaces a directory's bearer token; the result carries the new one.
    async fn rotate_directory_token(&self, token: Option<&str>, id: &str) -> Result<PortalDirectory, BackendError>;

    /// Deletes a directory.
    async fn delete_directory(&self, token: Option<&str>, id: &str) -> Result<(), BackendError>;

    /// SSO connections of the session's organization (needs the sso intent).
    async fn connections(&self, token: Option<&str>) -> Result<Vec<PortalConnection>, BackendError>;

    /// Starts a draft connection for `choice` (`okta-saml`, `entra-oidc`, …).
    async fn start_connection(&self, token: Option<&str>, choice: &str) -> Result<PortalConnection, BackendError>;

    /// Saves IdP details and attribute mapping.
    async fn configure_connection(
        &self,
        token: Option<&str>,
        id: &str,
        form: PortalConnectionForm,
    ) -> Result<PortalConnection, BackendError>;

    /// Starts a Test sign-in; returns the IdP URL to open.
    async fn test_connection(&self, token: Option<&str>, id: &str) -> Result<String, BackendError>;

    /// The outcome of Test sign-in `login`.
    async fn test_result(&self, token: Option<&str>, login: &str) -> Result<PortalTestResult, BackendError>;

    /// Activates (`sso.enabled`) or deactivates (`sso.disabled`).
    async fn set_connection_active(
        &self,
        token: Option<&str>,
        id: &str,
        active: bool,
    ) -> Result<PortalConnection, BackendError>;

    /// Deletes a connection.
    async fn delete_connection(&self, token: Option<&str>, id: &str) -> Result<(), BackendError>;
}

/// Cloneable handle placed in the Leptos context by the server.
#[derive(Clone)]
pub struct Backend(pub Arc<dyn PortalBackend>);

impl Backend {
    /// The backend provided by the server for this request.
    pub fn from_context() -> Result<Self, ServerFnError> {
        use_context::<Backend>().ok_or_else(|| ServerFnError::new("portal backend missing from context"))
    }
}

/// The value of the session cookie in the current request, if any.
pub async fn session_cookie() -> Option<String> {
    let headers: http::HeaderMap = leptos_axum::extract().await.ok()?;
    cookie_value(&headers, SESSION_COOKIE)
}

/// Finds cookie `name` in the request's `Cookie` headers.
pub fn cookie_value(headers: &http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}
