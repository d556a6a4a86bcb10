//! The portal's SSO wizard backend: drafts, IdP details, Test sign-in,
//! activation, for the session's organization only.

use app::backend::BackendError;
use app::dto::{Intent, PortalAttempt, PortalConnection, PortalConnectionForm, PortalTestResult};
use time::OffsetDateTime;
use uuid::Uuid;

use super::{ServerBackend, unavailable};
use crate::sso::setup::{ConnectionRequest, OidcRequest, SamlRequest, build};
use crate::sso::{AttributeMap, Connection, ConnectionInput, ConnectionWithSecret, IdpConfig, OidcConfig, SamlConfig};

/// How long before a certificate's expiry the portal warns.
const CERTIFICATE_WARNING_DAYS: i64 = crate::sso::CERTIFICATE_WARNING.whole_days();

fn rfc3339(t: OffsetDateTime) -> Option<String> {
    t.format(&time::format_description::well_known::Rfc3339).ok()
}

/// The wizard's provider choices: `(choice, provider, kind)`.
pub const CHOICES: &[(&str, &str, &str)] = &[
    ("okta-saml", "okta", "saml"),
    ("okta-oidc", "okta", "oidc"),
    ("entra-saml", "entra", "saml"),
    ("entra-oidc", "entra", "oidc"),
    ("google-saml", "google", "saml"),
    ("generic-saml", "generic", "saml"),
    ("generic-oidc", "generic", "oidc"),
];

fn provider_label(provider: &str) -> &'static str {
    match provider {
        "okta" => "Okta",
        "entra" => "Microsoft Entra ID",
        "google" => "Google Workspace",
        _ => "Identity provider",
    }
}

/// A warning when the earliest certificate expires soon.
pub fn certificate_warning(expires: Option<OffsetDateTime>, now: OffsetDateTime) -> Option<String> {
    let expires = expires?;
    let days = (expires - now).whole_days();
    let date = expires.date();
    if expires <= now {
        Some(format!(
            "The identity provider's signing certificate expired on {date}: sign-ins fail until you upload the new one."
        ))
    } else if days < CERTIFICATE_WARNING_DAYS {
        Some(format!(
            "The identity provider's signing certificate expires on {date} (in {days} days): add the new certificate here before it rotates."
        ))
    } else {
        None
    }
}

impl ServerBackend {
    fn portal_connection(&self, c: Connection, attempts: Vec<crate::store::connections::Attempt>) -> PortalConnection {
        let sp = crate::sso::setup::sp_values(&self.settings.public_url, &c);
        let (saml, oidc) = match &c.idp {
            IdpConfig::Saml(s) => (s.clone(), OidcConfig::default()),
            IdpConfig::Oidc(o) => (SamlConfig::default(), o.clone()),
        };
        PortalConnection {
            id: c.id.to_string(),
            configured: c.configured(),
            name: c.name.clone(),
            kind: c.connection_type.to_owned(),
            provider: c.provider.clone(),
            state: c.state,
            sp_entity_id: sp.entity_id,
            acs_url: sp.acs_url,
            sp_metadata_url: sp.metadata_url,
            redirect_uri: sp.redirect_uri,
            idp_entity_id: saml.idp_entity_id,
            idp_sso_url: saml.idp_sso_url,
            metadata_url: saml.metadata_url,
            certificates: saml
                .idp_certificates
                .iter()
                .filter_map(|pem| crate::sso::saml::certificate_info(pem).ok())
                .map(|i| format!("{} — expires {}", i.subject, i.not_after.date()))
                .collect(),
            allow_idp_initiated: saml.allow_idp_initiated,
            scopes: oidc.scopes.join(" "),
            issuer: oidc.issuer,
            client_id: oidc.client_id,
            has_client_secret: c.has_client_secret,
            map_email: c.attribute_map.email.clone(),
            map_first_name: c.attribute_map.first_name.clone(),
            map_last_name: c.attribute_map.last_name.clone(),
            map_groups: c.attribute_map.groups.clone(),
            certificate_expires_at: c.certificate_expires_at.and_then(rfc3339),
            certificate_warning: certificate_warning(c.certificate_expires_at, OffsetDateTime::now_utc()),
            tested_at: c.tested_at.and_then(rfc3339),
            attempts: attempts
                .into_iter()
                .map(|a| PortalAttempt {
                    at: rfc3339(a.occurred_at).unwrap_or_default(),
                    purpose: a.purpose,
                    outcome: a.outcome,
                    email: a.email,
                    reason: a.reason,
                })
                .collect(),
        }
    }

    async fn shown(&self, c: Connection) -> Result<PortalConnection, BackendError> {
        let attempts = self.store.connection_attempts(c.id, 20).await.map_err(unavailable)?;
        Ok(self.portal_connection(c, attempts))
    }

    /// Connection `id` if it belongs to the session's organization.
    async fn own_connection(&self, token: Option<&str>, id: &str) -> Result<ConnectionWithSecret, BackendError> {
        let org = self.authorize(token, Intent::Sso).await?;
        let missing = || BackendError("That connection no longer exists.".into());
        let id = Uuid::try_parse(id).map_err(|_| missing())?;
        match self.store.get_connection(id).await.map_err(unavailable)? {
            Some(c) if c.connection.organization_id == org => Ok(c),
            _ => Err(missing()),
        }
    }

    pub(super) async fn sso_connections(&self, token: Option<&str>) -> Result<Vec<PortalConnection>, BackendError> {
        let org = self.authorize(token, Intent::Sso).await?;
        let list = self.store.list_connections(org).await.map_err(unavailable)?;
        let mut out = Vec::with_capacity(list.len());
        for c in list {
            out.push(self.shown(c).await?);
        }
        Ok(out)
    }

    pub(super) async fn sso_start(&self, token: Option<&str>, choice: &str) -> Result<PortalConnection, BackendError> {
        let org = self.authorize(token, Intent::Sso).await?;
        let (_, provider, kind) = CHOICES
            .iter()
            .find(|(c, _, _)| *c == choice)
            .ok_or_else(|| BackendError("Choose your identity provider from the list.".into()))?;
        let idp = if *kind == "saml" {
            IdpConfig::Saml(SamlConfig::default())
        } else {
            IdpConfig::Oidc(OidcConfig::default())
        };
        let input = ConnectionInput {
            provider: (*provider).to_owned(),
            name: format!("{} ({})", provider_label(provider), kind.to_uppercase()),
            idp,
            sealed_client_secret: None,
            attribute_map: AttributeMap::defaults(provider, kind),
            certificate_expires_at: None,
        };
        let created = self
            .store
            .create_connection(org, &input)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| BackendError("Your organization no longer exists.".into()))?;
        tracing::info!(org_id = %org, connection_id = %created.id, "connection started in the portal");
        self.shown(created).await
    }

    pub(super) async fn sso_configure(
        &self,
        token: Option<&str>,
        id: &str,
        form: PortalConnectionForm,
    ) -> Result<PortalConnection, BackendError> {
        let current = self.own_connection(token, id).await?;
        let c = &current.connection;
        let text = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let map = AttributeMap {
            email: text(&form.map_email).unwrap_or_else(|| c.attribute_map.email.clone()),
            first_name: text(&form.map_first_name).unwrap_or_else(|| c.attribute_map.first_name.clone()),
            last_name: text(&form.map_last_name).unwrap_or_else(|| c.attribute_map.last_name.clone()),
            groups: text(&form.map_groups).unwrap_or_else(|| c.attribute_map.groups.clone()),
        };
        let allow_idp_initiated = form.allow_idp_initiated.as_deref().is_some_and(|v| v == "on" || v == "true");
        let mut request = ConnectionRequest {
            kind: c.connection_type.to_owned(),
            provider: c.provider.clone(),
            name: Some(c.name.clone()),
            saml: None,
            oidc: None,
            attribute_map: Some(map),
        };
        match &c.idp {
            IdpConfig::Saml(existing) => {
                let (xml, url) = (text(&form.metadata_xml), text(&form.metadata_url));
                let manual = (text(&form.idp_entity_id), text(&form.idp_sso_url), text(&form.idp_certificate));
                let nothing_new = xml.is_none() && url.is_none() && manual == (None, None, None);
                request.saml = Some(if nothing_new && c.configured() {
                    // Only the mapping or options changed: keep the IdP details.
                    SamlRequest {
                        idp_entity_id: Some(existing.idp_entity_id.clone()),
                        idp_sso_url: Some(existing.idp_sso_url.clone()),
                        idp_certificate: existing.idp_certificates.first().cloned(),
                        allow_idp_initiated,
                        ..SamlRequest::default()
                    }
                } else {
                    SamlRequest {
                        metadata_xml: xml,
                        metadata_url: url,
                        idp_entity_id: manual.0,
                        idp_sso_url: manual.1,
                        idp_certificate: manual.2,
                        allow_idp_initiated,
                        allow_sha1: existing.allow_sha1,
                    }
                });
            }
            IdpConfig::Oidc(_) => {
                request.oidc = Some(OidcRequest {
                    issuer: text(&form.issuer).unwrap_or_default(),
                    client_id: text(&form.client_id).unwrap_or_default(),
                    client_secret: text(&form.client_secret),
                    scopes: text(&form.scopes)
                        .map(|s| s.split_whitespace().map(str::to_owned).collect())
                        .unwrap_or_default(),
                });
            }
        }
        let stored = crate::sso::setup::StoredOidc::of(&current);
        let input = build(request, &self.cipher, &self.oidc, &self.egress, stored).await.map_err(|errors| {
            BackendError(errors.iter().map(|e| readable(&e.field, &e.message)).collect::<Vec<_>>().join(" "))
        })?;
        let updated = self
            .store
            .update_connection(c.id, &input)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| BackendError("That connection no longer exists.".into()))?;
        self.shown(updated).await
    }

    pub(super) async fn sso_test(&self, token: Option<&str>, id: &str) -> Result<String, BackendError> {
        let current = self.own_connection(token, id).await?;
        if !current.connection.configured() {
            return Err(BackendError("Enter the identity provider's details before testing.".into()));
        }
        let ctx = crate::services::login::LoginContext {
            store: &self.store,
            public_url: &self.settings.public_url,
            cipher: &self.cipher,
            oidc: &self.oidc,
        };
        let url = ctx.start(&current, "test", None, None).await.map_err(|e| BackendError(e.to_string()))?;
        // The browser is sent there: never anything but http(s).
        if !app::dto::is_http_url(&url) {
            return Err(BackendError("The identity provider's sign-in URL is not an http(s) URL.".into()));
        }
        Ok(url)
    }

    pub(super) async fn sso_test_result(
        &self,
        token: Option<&str>,
        login: &str,
    ) -> Result<PortalTestResult, BackendError> {
        let missing = || BackendError("That test sign-in is unknown; run it again.".into());
        let login = self
            .store
            .get_login(Uuid::try_parse(login).map_err(|_| missing())?)
            .await
            .map_err(unavailable)?
            .filter(|l| l.purpose == "test")
            .ok_or_else(missing)?;
        // Only the organization's own tests.
        self.own_connection(token, &login.connection_id.to_string()).await.map_err(|_| missing())?;
        let result = login.result.clone().ok_or_else(|| BackendError("The test sign-in has not finished.".into()))?;
        let mut out = PortalTestResult {
            connection_id: login.connection_id.to_string(),
            succeeded: login.outcome.as_deref() == Some("succeeded"),
            profile: None,
            email: None,
            first_name: None,
            last_name: None,
            groups: Vec::new(),
            reason: None,
        };
        if out.succeeded {
            let profile: crate::sso::Profile = serde_json::from_str(&result).map_err(unavailable)?;
            out.profile = serde_json::to_string_pretty(&profile).ok();
            out.email = Some(profile.email);
            out.first_name = profile.first_name;
            out.last_name = profile.last_name;
            out.groups = profile.groups;
        } else {
            out.reason = Some(result);
        }
        Ok(out)
    }

    pub(super) async fn sso_set_active(
        &self,
        token: Option<&str>,
        id: &str,
        active: bool,
    ) -> Result<PortalConnection, BackendError> {
        let current = self.own_connection(token, id).await?;
        if active && !current.connection.configured() {
            return Err(BackendError("Enter the identity provider's details before activating.".into()));
        }
        let updated = self
            .store
            .set_connection_active(current.connection.id, active)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| BackendError("That connection no longer exists.".into()))?;
        self.shown(updated).await
    }

    pub(super) async fn sso_delete(&self, token: Option<&str>, id: &str) -> Result<(), BackendError> {
        let current = self.own_connection(token, id).await?;
        self.store.delete_connection(current.connection.id).await.map_err(unavailable)?;
        Ok(())
    }
}

/// A field error as a sentence for the wizard.
fn readable(field: &str, message: &str) -> String {
    let what = match field {
        "saml.metadata_url" => "Metadata URL",
        "saml.metadata_xml" => "Metadata XML",
        "saml.idp_certificate" => "Certificate",
        "saml" => "SAML settings",
        "oidc.issuer" => "Issuer",
        "oidc.client_secret" => "Client secret",
        "oidc" => "OIDC settings",
        "attribute_map.email" => "Email attribute",
        other => other,
    };
    let mut sentence = format!("{what}: {message}");
    if !sentence.ends_with('.') {
        sentence.push('.');
    }
    sentence
}
