//! The portal as a service: issuing links (and emailing them), the
//! embedding policy, and the server side of the portal UI
//! ([`ServerBackend`]). Links and sessions are stored by `store/portal.rs`;
//! `GET /portal/launch` is `http/portal.rs`.

use std::sync::Arc;

use app::backend::{BackendError, PortalBackend};
use app::dto::{
    Branding, Intent, PortalDirectory, PortalDirectoryActivity, PortalDirectoryGroup, PortalDirectoryUser,
    PortalDomain, PortalInfo, PortalScimRequest, PortalSession, SessionState,
};
use app::dto::{PortalConnection, PortalConnectionForm, PortalTestResult};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::config::Settings;
use crate::fields::FieldError;
use crate::mail::{Mailer, PortalLinkEmail};
use crate::store::{Store, StoreError};

pub use crate::store::portal::{NewLink, SessionPolicy};

mod sso;
pub use sso::certificate_warning;

impl SessionPolicy {
    /// The policy configured in `settings`.
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            ttl: Duration::seconds(settings.portal.session_ttl_secs as i64),
            idle: Duration::seconds(settings.portal.session_idle_secs as i64),
        }
    }
}

/// `Content-Security-Policy` value that controls who may frame the portal.
pub fn frame_ancestors(settings: &Settings) -> String {
    if settings.portal.embed_origins.is_empty() {
        "frame-ancestors 'none'".into()
    } else {
        format!("frame-ancestors {}", settings.portal.embed_origins.join(" "))
    }
}

/// A link request as it arrives (API body or CLI flags).
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PortalLinkRequest)]
pub struct LinkRequest {
    #[schema(format = Uuid)]
    pub organization_id: String,
    /// What the link lets the IT admin do; at least one.
    #[schema(schema_with = intents_schema)]
    pub intents: Vec<String>,
    /// Seconds; default `portal.link_ttl_secs` (300); at most
    /// `portal.max_link_ttl_secs` (86400), or
    /// `portal.max_emailed_link_ttl_secs` (604800) with `email`.
    #[serde(default)]
    #[schema(minimum = 1)]
    pub expires_in: Option<i64>,
    /// Absolute http(s) URL of the portal's "Back to <vendor>" button.
    #[serde(default)]
    #[schema(format = "uri")]
    pub return_url: Option<String>,
    /// Absolute http(s) URL the portal sends the IT admin to when setup is
    /// done.
    #[serde(default)]
    #[schema(format = "uri")]
    pub success_url: Option<String>,
    /// Send the link to this address (needs SMTP).
    #[serde(default)]
    #[schema(format = Email)]
    pub email: Option<String>,
}

/// `intents`: the wire names of [`Intent::ALL`], at least one.
fn intents_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::fields::schema::one_of_words(&Intent::ALL.map(Intent::as_str)))
        .min_items(Some(1))
        .build()
}

/// `intents` of an issued link.
fn issued_intents_schema() -> utoipa::openapi::schema::Array {
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(crate::fields::schema::one_of_words(&Intent::ALL.map(Intent::as_str)))
        .build()
}

/// The link handed back to the vendor.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = PortalLink)]
pub struct IssuedLink {
    #[schema(schema_with = crate::fields::schema::object::portal_link)]
    pub object: &'static str,
    pub id: Uuid,
    /// Single-use; shown only here.
    #[schema(format = "uri")]
    pub url: String,
    pub organization_id: Uuid,
    #[schema(schema_with = issued_intents_schema)]
    pub intents: Vec<Intent>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Where the link was emailed, if it was.
    #[schema(required = true)]
    pub emailed_to: Option<String>,
}

/// Why a link could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("invalid link request")]
    Invalid(Vec<FieldError>),
    #[error("email delivery is not configured (set smtp.host)")]
    EmailNotConfigured,
    #[error("the portal link email could not be sent; the link was voided")]
    EmailFailed(#[source] anyhow::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn is_http_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() <= 2048
        && s.len() > "https://".len()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty()
        && s.len() <= 254
        && crate::orgs::DomainName::parse(domain).is_ok()
        && !s.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'))
}

impl LinkRequest {
    /// Checks every field, collecting all problems.
    pub fn validate(&self, settings: &Settings) -> Result<NewLink, LinkError> {
        let mut errors = Vec::new();
        let mut err = |field: &str, message: String| errors.push(FieldError { field: field.into(), message });
        let organization_id = Uuid::try_parse(&self.organization_id).ok();
        if organization_id.is_none() {
            err("organization_id", "must be an organization id (UUID)".into());
        }
        let mut intents = Vec::new();
        if self.intents.is_empty() {
            err("intents", "must list at least one of sso, dsync, domain_verification".into());
        }
        for (i, raw) in self.intents.iter().enumerate() {
            match Intent::parse(raw) {
                Some(intent) if !intents.contains(&intent) => intents.push(intent),
                Some(_) => err(&format!("intents[{i}]"), format!("{raw:?} is listed twice")),
                None => err(
                    &format!("intents[{i}]"),
                    format!("unknown intent {raw:?}; use sso, dsync or domain_verification"),
                ),
            }
        }
        intents.sort();
        let max = if self.email.is_some() {
            settings.portal.max_emailed_link_ttl_secs
        } else {
            settings.portal.max_link_ttl_secs
        } as i64;
        let ttl = self.expires_in.unwrap_or(settings.portal.link_ttl_secs as i64);
        if !(1..=max).contains(&ttl) {
            err("expires_in", format!("must be between 1 and {max} seconds"));
        }
        for (field, value) in [("return_url", &self.return_url), ("success_url", &self.success_url)] {
            if value.as_deref().is_some_and(|u| !is_http_url(u)) {
                err(field, "must be an absolute http(s) URL of at most 2048 characters".into());
            }
        }
        if self.email.as_deref().is_some_and(|e| !is_email(e)) {
            err("email", "must be an email address like it-admin@example.com".into());
        }
        match organization_id {
            Some(organization_id) if errors.is_empty() => Ok(NewLink {
                organization_id,
                intents,
                ttl: Duration::seconds(ttl),
                return_url: self.return_url.clone(),
                success_url: self.success_url.clone(),
                email: self.email.clone(),
            }),
            _ => Err(LinkError::Invalid(errors)),
        }
    }
}

/// Validates, stores and (optionally) emails a portal link.
pub async fn issue_link(
    store: &Store,
    settings: &Settings,
    mailer: Option<&Mailer>,
    request: &LinkRequest,
) -> Result<IssuedLink, LinkError> {
    let new = request.validate(settings)?;
    if new.email.is_some() && mailer.is_none() {
        return Err(LinkError::EmailNotConfigured);
    }
    let created = store.create_portal_link(&new).await?.ok_or_else(|| {
        LinkError::Invalid(vec![FieldError {
            field: "organization_id".into(),
            message: "no organization has this id".into(),
        }])
    })?;
    let url = format!("{}/portal/launch?token={}", settings.public_base(), created.token.expose_secret());
    if let (Some(to), Some(mailer)) = (new.email.as_deref(), mailer) {
        let mail = PortalLinkEmail {
            to,
            vendor_name: &settings.vendor.name,
            organization_name: &created.organization_name,
            url: &url,
            expires_at: created.expires_at,
        };
        if let Err(e) = mailer.send_portal_link(&mail).await {
            store.void_portal_link(created.id).await?;
            return Err(LinkError::EmailFailed(e));
        }
    }
    tracing::info!(link_id = %created.id, org_id = %created.organization_id, emailed = new.email.is_some(), "portal link issued");
    Ok(IssuedLink {
        object: "portal_link",
        id: created.id,
        url,
        organization_id: created.organization_id,
        intents: created.intents,
        created_at: created.created_at,
        expires_at: created.expires_at,
        emailed_to: new.email,
    })
}

/// Backend handed to Leptos server functions through context.
pub struct ServerBackend {
    store: Store,
    settings: Arc<Settings>,
    domains: Arc<crate::services::domains::DomainService>,
    cipher: Arc<crate::crypto::Cipher>,
    oidc: Arc<crate::sso::oidc::OidcProviders>,
    egress: crate::egress::Egress,
}

impl ServerBackend {
    pub fn new(
        store: Store,
        settings: Arc<Settings>,
        domains: Arc<crate::services::domains::DomainService>,
        cipher: Arc<crate::crypto::Cipher>,
        oidc: Arc<crate::sso::oidc::OidcProviders>,
        egress: crate::egress::Egress,
    ) -> Self {
        Self { store, settings, domains, cipher, oidc, egress }
    }

    /// Vendor branding with the organization's overrides applied.
    fn branding(&self, logo_url: Option<String>, accent_color: Option<String>) -> Branding {
        Branding {
            vendor_name: self.settings.vendor.name.clone(),
            logo_url: logo_url.or_else(|| self.settings.vendor.logo_url.clone()),
            accent_color: accent_color.or_else(|| self.settings.vendor.accent_color.clone()),
        }
    }
}

impl ServerBackend {
    /// The organization of a live session whose link includes `intent`.
    async fn authorize(&self, token: Option<&str>, intent: Intent) -> Result<Uuid, BackendError> {
        let vendor = &self.settings.vendor.name;
        let ended = || BackendError(format!("Your portal session has ended. Ask {vendor} for a new portal link."));
        let token = SecretString::from(token.ok_or_else(ended)?.to_owned());
        let session = self
            .store
            .portal_session(&token, SessionPolicy::from_settings(&self.settings))
            .await
            .map_err(unavailable)?
            .ok_or_else(ended)?;
        if !session.intents.contains(&intent) {
            return Err(BackendError(format!("This portal link does not include {}.", intent.title().to_lowercase())));
        }
        Ok(session.organization_id)
    }

    async fn domain_named(&self, org: Uuid, domain: &str) -> Result<crate::domains::Domain, BackendError> {
        let name = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        self.store
            .get_domain(&self.domains.policy, org, &name)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| BackendError(format!("{name} is not one of your domains.")))
    }
}

impl ServerBackend {
    fn portal_directory(&self, d: crate::store::directories::Directory, token: Option<String>) -> PortalDirectory {
        let rfc3339 = &time::format_description::well_known::Rfc3339;
        PortalDirectory {
            scim_base_url: format!("{}/scim/v2/{}", self.settings.public_url.trim_end_matches('/'), d.id),
            id: d.id.to_string(),
            name: d.name,
            provider: d.provider,
            state: d.state,
            last_request_at: d.last_request_at.and_then(|t| t.format(rfc3339).ok()),
            bearer_token: token,
            activity: None,
        }
    }

    /// Users, groups, request log and last sync of a directory.
    async fn directory_activity(
        &self,
        dir: &crate::store::directories::Directory,
    ) -> Result<PortalDirectoryActivity, BackendError> {
        const SHOWN: i64 = 50;
        let counts = self.store.directory_counts(dir.id).await.map_err(unavailable)?;
        let users = self.store.directory_users_by_name(dir.id, SHOWN).await.map_err(unavailable)?;
        let groups = self.store.directory_groups_by_name(dir.id, SHOWN).await.map_err(unavailable)?;
        let requests = self.store.scim_requests(dir.id, SHOWN).await.map_err(unavailable)?;
        let rfc3339 = |t: time::OffsetDateTime| t.format(&time::format_description::well_known::Rfc3339).ok();
        Ok(PortalDirectoryActivity {
            last_sync_at: counts.last_success_at.or(dir.last_request_at).and_then(rfc3339),
            user_count: counts.users,
            active_user_count: counts.active_users,
            users: users
                .into_iter()
                .map(|u| PortalDirectoryUser {
                    name: match (u.first_name, u.last_name) {
                        (None, None) => None,
                        (first, last) => Some(
                            format!("{} {}", first.unwrap_or_default(), last.unwrap_or_default()).trim().to_owned(),
                        ),
                    },
                    username: u.username,
                    email: u.email,
                    state: u.state.to_owned(),
                })
                .collect(),
            group_count: counts.groups,
            groups: groups.into_iter().map(|(name, members)| PortalDirectoryGroup { name, members }).collect(),
            requests: requests
                .into_iter()
                .map(|r| PortalScimRequest {
                    at: rfc3339(r.occurred_at).unwrap_or_default(),
                    method: r.method,
                    path: r.path,
                    status: u16::try_from(r.status).unwrap_or(0),
                    latency_ms: format!("{:.1}", r.latency_us as f64 / 1000.0),
                    detail: r.detail,
                })
                .collect(),
        })
    }

    /// Directory `id` if it belongs to `org`.
    async fn own_directory(&self, org: Uuid, id: &str) -> Result<crate::store::directories::Directory, BackendError> {
        let missing = || BackendError("That directory no longer exists.".into());
        let id = Uuid::try_parse(id).map_err(|_| missing())?;
        match self.store.get_directory(id).await.map_err(unavailable)? {
            Some(d) if d.organization_id == org => Ok(d),
            _ => Err(missing()),
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> BackendError {
    tracing::error!(error = %e, "portal backend call failed");
    BackendError("The portal is temporarily unavailable. Try again in a minute.".into())
}

fn portal_domain(d: crate::domains::Domain) -> PortalDomain {
    let time =
        |t: Option<time::OffsetDateTime>| t.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok());
    PortalDomain {
        state: d.state,
        record_name: d.verification.name,
        record_host: d.verification.host,
        record_value: d.verification.value,
        checks: d.checks,
        last_checked_at: time(d.last_checked_at),
        last_result: d.last_result,
        next_check_at: time(d.next_check_at),
        expires_at: time(d.expires_at),
        domain: d.domain,
    }
}

#[async_trait::async_trait]
impl PortalBackend for ServerBackend {
    async fn portal_info(&self) -> Result<PortalInfo, BackendError> {
        Ok(PortalInfo { vendor_name: self.settings.vendor.name.clone(), vendor_url: self.settings.vendor.url.clone() })
    }

    async fn session(&self, token: Option<&str>) -> Result<SessionState, BackendError> {
        let Some(token) = token else { return Ok(SessionState::Missing) };
        let token = SecretString::from(token.to_owned());
        let record =
            self.store.portal_session(&token, SessionPolicy::from_settings(&self.settings)).await.map_err(|e| {
                tracing::error!(error = format!("{e:#}"), "portal session lookup failed");
                BackendError("the portal is temporarily unavailable".into())
            })?;
        Ok(match record {
            None => SessionState::Missing,
            Some(s) => SessionState::Active(PortalSession {
                organization_id: s.organization_id.to_string(),
                organization_name: s.organization_name,
                intents: s.intents,
                branding: self.branding(s.logo_url, s.accent_color),
                return_url: s.return_url,
                success_url: s.success_url,
                expires_at_ms: (s.ends_at.unix_timestamp_nanos() / 1_000_000) as i64,
                embedded: s.embedded,
                embed_origins: self.settings.portal.embed_origins.clone(),
            }),
        })
    }

    async fn domains(&self, token: Option<&str>) -> Result<Vec<PortalDomain>, BackendError> {
        let org = self.authorize(token, Intent::DomainVerification).await?;
        let list = self.store.list_domains(&self.domains.policy, org).await.map_err(unavailable)?;
        Ok(list.into_iter().map(portal_domain).collect())
    }

    async fn add_domain(&self, token: Option<&str>, domain: &str) -> Result<PortalDomain, BackendError> {
        let org = self.authorize(token, Intent::DomainVerification).await?;
        let name = crate::orgs::DomainName::parse(domain)
            .map_err(|m| BackendError(format!("Enter a domain name like example.com: {m}.")))?;
        match self.store.add_domain(&self.domains.policy, org, &name).await {
            Ok(Some(d)) => {
                tracing::info!(org_id = %org, domain = %d.domain, "domain added in the portal");
                Ok(portal_domain(d))
            }
            Ok(None) => Err(BackendError("Your organization no longer exists.".into())),
            Err(StoreError::Conflict(conflict)) => Err(BackendError(format!("Cannot add it: {conflict}."))),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn verify_domain(&self, token: Option<&str>, domain: &str) -> Result<PortalDomain, BackendError> {
        let org = self.authorize(token, Intent::DomainVerification).await?;
        let current = self.domain_named(org, domain).await?;
        let checked = self
            .domains
            .check(&self.store, current.id, true)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| BackendError(format!("{} was removed meanwhile.", current.domain)))?;
        Ok(portal_domain(checked))
    }

    async fn remove_domain(&self, token: Option<&str>, domain: &str) -> Result<(), BackendError> {
        let org = self.authorize(token, Intent::DomainVerification).await?;
        let current = self.domain_named(org, domain).await?;
        self.store.remove_domain(org, &current.domain).await.map_err(unavailable)?;
        Ok(())
    }

    async fn directories(&self, token: Option<&str>) -> Result<Vec<PortalDirectory>, BackendError> {
        let org = self.authorize(token, Intent::Dsync).await?;
        let list = self.store.list_directories(org).await.map_err(unavailable)?;
        let mut out = Vec::with_capacity(list.len());
        for d in list {
            let activity = self.directory_activity(&d).await?;
            let mut shown = self.portal_directory(d, None);
            shown.activity = Some(activity);
            out.push(shown);
        }
        Ok(out)
    }

    async fn create_directory(
        &self,
        token: Option<&str>,
        name: &str,
        provider: &str,
    ) -> Result<PortalDirectory, BackendError> {
        let org = self.authorize(token, Intent::Dsync).await?;
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            return Err(BackendError("Give the directory a name of at most 200 characters.".into()));
        }
        if !crate::store::directories::PROVIDERS.contains(&provider) {
            return Err(BackendError("Choose your identity provider from the list.".into()));
        }
        let created = self
            .store
            .create_directory(org, name, provider)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| BackendError("Your organization no longer exists.".into()))?;
        tracing::info!(org_id = %org, directory_id = %created.directory.id, "directory created in the portal");
        Ok(self.portal_directory(created.directory, Some(created.token.expose_secret().to_owned())))
    }

    async fn rotate_directory_token(&self, token: Option<&str>, id: &str) -> Result<PortalDirectory, BackendError> {
        let org = self.authorize(token, Intent::Dsync).await?;
        let dir = self.own_directory(org, id).await?;
        let rotated = self
            .store
            .rotate_directory_token(dir.id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| BackendError("That directory no longer exists.".into()))?;
        Ok(self.portal_directory(rotated.directory, Some(rotated.token.expose_secret().to_owned())))
    }

    async fn delete_directory(&self, token: Option<&str>, id: &str) -> Result<(), BackendError> {
        let org = self.authorize(token, Intent::Dsync).await?;
        let dir = self.own_directory(org, id).await?;
        self.store.delete_directory(dir.id).await.map_err(unavailable)?;
        Ok(())
    }

    async fn connections(&self, token: Option<&str>) -> Result<Vec<PortalConnection>, BackendError> {
        self.sso_connections(token).await
    }

    async fn start_connection(&self, token: Option<&str>, choice: &str) -> Result<PortalConnection, BackendError> {
        self.sso_start(token, choice).await
    }

    async fn configure_connection(
        &self,
        token: Option<&str>,
        id: &str,
        form: PortalConnectionForm,
    ) -> Result<PortalConnection, BackendError> {
        self.sso_configure(token, id, form).await
    }

    async fn test_connection(&self, token: Option<&str>, id: &str) -> Result<String, BackendError> {
        self.sso_test(token, id).await
    }

    async fn test_result(&self, token: Option<&str>, login: &str) -> Result<PortalTestResult, BackendError> {
        self.sso_test_result(token, login).await
    }

    async fn set_connection_active(
        &self,
        token: Option<&str>,
        id: &str,
        active: bool,
    ) -> Result<PortalConnection, BackendError> {
        self.sso_set_active(token, id, active).await
    }

    async fn delete_connection(&self, token: Option<&str>, id: &str) -> Result<(), BackendError> {
        self.sso_delete(token, id).await
    }
}
