//! SSO connections: SAML ([`saml`]) or OIDC ([`oidc`]) links between one
//! organization and its identity provider, and the login flow ([`flow`]) the
//! vendor's app drives through `/sso/authorize` and `/sso/token`.
//!
//! A connection starts as a `draft` (configurable, testable), becomes
//! `active` (`sso.enabled`) and may be deactivated (`sso.disabled`). Edits
//! record `connection.updated`. IdP secrets are stored encrypted.

pub mod error;
pub mod oidc;
pub mod saml;
pub mod setup;

pub use app::dto::ConnectionState;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Identity providers with written guides; `generic` covers the rest.
pub const PROVIDERS: &[&str] = &["okta", "entra", "google", "generic"];

/// IdP details, without secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum IdpConfig {
    Saml(SamlConfig),
    Oidc(OidcConfig),
}

impl IdpConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            IdpConfig::Saml(_) => "saml",
            IdpConfig::Oidc(_) => "oidc",
        }
    }
}

/// The IdP side of a SAML connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct SamlConfig {
    pub idp_entity_id: String,
    /// HTTP-Redirect single sign-on endpoint.
    pub idp_sso_url: String,
    /// Signing certificates, PEM.
    pub idp_certificates: Vec<String>,
    /// Where the metadata came from, when fetched by URL.
    pub metadata_url: Option<String>,
    /// Accept IdP-initiated responses (converted to an SP-initiated login).
    pub allow_idp_initiated: bool,
    /// Accept RSA-SHA1 signatures (legacy IdPs only).
    pub allow_sha1: bool,
}

/// The IdP side of an OIDC connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    /// Scopes beyond `openid`.
    pub scopes: Vec<String>,
}

/// Where the profile's fields come from in the IdP's attributes or claims.
/// Omitted fields take the provider's defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct AttributeMap {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub groups: String,
}

impl Default for AttributeMap {
    fn default() -> Self {
        Self::defaults("generic", "saml")
    }
}

const CLAIMS: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims";

impl AttributeMap {
    /// What each IdP sends out of the box (see docs/sso.md).
    pub fn defaults(provider: &str, kind: &str) -> Self {
        let s = |v: &str| v.to_owned();
        match (provider, kind) {
            (_, "oidc") => Self {
                email: s("email"),
                first_name: s("given_name"),
                last_name: s("family_name"),
                groups: s("groups"),
            },
            ("entra", _) => Self {
                email: format!("{CLAIMS}/emailaddress"),
                first_name: format!("{CLAIMS}/givenname"),
                last_name: format!("{CLAIMS}/surname"),
                groups: s("http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"),
            },
            _ => Self { email: s("email"), first_name: s("firstName"), last_name: s("lastName"), groups: s("groups") },
        }
    }
}

/// A connection as the API and portal show it (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Connection {
    pub id: Uuid,
    pub organization_id: Uuid,
    /// `saml` or `oidc`.
    #[schema(schema_with = connection_type_schema)]
    pub connection_type: &'static str,
    #[schema(schema_with = provider_schema)]
    pub provider: String,
    pub name: String,
    /// `draft` until activated, then `active` or `inactive`.
    #[schema(schema_with = crate::fields::schema::connection_state)]
    pub state: ConnectionState,
    pub idp: IdpConfig,
    pub has_client_secret: bool,
    pub attribute_map: AttributeMap,
    /// Earliest expiry of the IdP's signing certificates (SAML).
    #[serde(with = "time::serde::rfc3339::option")]
    pub certificate_expires_at: Option<OffsetDateTime>,
    /// Last successful test sign-in.
    #[serde(with = "time::serde::rfc3339::option")]
    pub tested_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

fn connection_type_schema() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(&["saml", "oidc"])
}

fn provider_schema() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(PROVIDERS)
}

impl Connection {
    /// The IdP details are complete: Test sign-in and activation may run.
    pub fn configured(&self) -> bool {
        match &self.idp {
            IdpConfig::Saml(c) => {
                !c.idp_entity_id.is_empty() && !c.idp_sso_url.is_empty() && !c.idp_certificates.is_empty()
            }
            IdpConfig::Oidc(c) => !c.issuer.is_empty() && !c.client_id.is_empty() && self.has_client_secret,
        }
    }
}

/// A connection with its sealed client secret, for the login flow.
#[derive(Debug, Clone)]
pub struct ConnectionWithSecret {
    pub connection: Connection,
    /// Encrypted (see `crypto::Cipher`).
    pub sealed_client_secret: Option<String>,
}

/// A new or edited connection. `sealed_client_secret: None` keeps the
/// stored one on update.
#[derive(Debug, Clone)]
pub struct ConnectionInput {
    pub provider: String,
    pub name: String,
    pub idp: IdpConfig,
    pub sealed_client_secret: Option<String>,
    pub attribute_map: AttributeMap,
    pub certificate_expires_at: Option<OffsetDateTime>,
}

/// The user the vendor's app receives from `POST /sso/token`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Stable per (connection, IdP user).
    pub id: Uuid,
    pub idp_id: String,
    pub organization_id: Uuid,
    pub connection_id: Uuid,
    pub connection_type: String,
    pub email: String,
    /// The IdP vouches for the address: OIDC `email_verified: true`; SAML
    /// assertions unless an `email_verified` attribute says `false`.
    #[serde(default)]
    pub email_verified: bool,
    /// The email's domain is one of the organization's verified domains.
    /// Link accounts by email only when both flags are true; key users on
    /// `(organization_id, id)`.
    #[serde(default)]
    pub email_domain_verified: bool,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub groups: Vec<String>,
    pub raw_attributes: serde_json::Value,
}

impl Profile {
    /// Builds the normalized profile from the IdP's subject and attributes
    /// (`name → [values]`), following `map` with per-IdP fallbacks.
    pub fn from_attributes(
        connection: &Connection,
        subject: &str,
        attributes: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, String> {
        let find = |name: &str| -> Vec<String> {
            attributes
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| match v {
                    serde_json::Value::Array(items) => {
                        items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()
                    }
                    serde_json::Value::String(s) => vec![s.clone()],
                    other => vec![other.to_string()],
                })
                .unwrap_or_default()
        };
        let first = |names: &[&str]| names.iter().find_map(|n| find(n).into_iter().find(|v| !v.trim().is_empty()));
        let map = &connection.attribute_map;
        let email = first(&[map.email.as_str(), "email", "mail", &format!("{CLAIMS}/emailaddress"), "upn"])
            .or_else(|| subject.contains('@').then(|| subject.to_owned()))
            .ok_or_else(|| {
                format!(
                    "missing email attribute: the identity provider sent no `{}` attribute (received: {})",
                    map.email,
                    if attributes.is_empty() {
                        "no attributes".to_owned()
                    } else {
                        attributes.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                )
            })?;
        // OIDC: only an explicit `email_verified: true` counts (absent is
        // unknown). SAML has no such claim: the IdP asserts the address from
        // its directory, unless it says otherwise.
        let email_verified = match find("email_verified").first().map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) => v == "true",
            None => connection.connection_type == "saml",
        };
        let key = format!("{}:{subject}", connection.id);
        Ok(Profile {
            id: stable_id(&key),
            idp_id: subject.to_owned(),
            organization_id: connection.organization_id,
            connection_id: connection.id,
            connection_type: connection.connection_type.to_owned(),
            email: email.trim().to_owned(),
            email_verified,
            email_domain_verified: false,
            first_name: first(&[map.first_name.as_str(), "given_name", "firstName", &format!("{CLAIMS}/givenname")]),
            last_name: first(&[map.last_name.as_str(), "family_name", "lastName", &format!("{CLAIMS}/surname")]),
            groups: find(&map.groups),
            raw_attributes: serde_json::Value::Object(attributes.clone()),
        })
    }
}

/// A UUID derived from `key` (SHA-256, version 8 layout): the same IdP user
/// of the same connection always gets the same profile id.
fn stable_id(key: &str) -> Uuid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// How long before expiry `connection.certificate_expiring` is recorded.
pub const CERTIFICATE_WARNING: time::Duration = time::Duration::days(30);

#[cfg(test)]
mod tests {
    use super::*;

    fn connection(provider: &str, kind: &str) -> Connection {
        let now = OffsetDateTime::now_utc();
        Connection {
            id: Uuid::now_v7(),
            organization_id: Uuid::now_v7(),
            connection_type: if kind == "saml" { "saml" } else { "oidc" },
            provider: provider.into(),
            name: "Test".into(),
            state: ConnectionState::Draft,
            idp: IdpConfig::Saml(SamlConfig::default()),
            has_client_secret: false,
            attribute_map: AttributeMap::defaults(provider, kind),
            certificate_expires_at: None,
            tested_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn entra_claims_map_to_the_profile() {
        let c = connection("entra", "saml");
        let attrs = serde_json::json!({
            format!("{CLAIMS}/emailaddress"): ["ada@contoso.example"],
            format!("{CLAIMS}/givenname"): ["Ada"],
            format!("{CLAIMS}/surname"): ["Lovelace"],
            "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups": ["g1", "g2"],
        });
        let p = Profile::from_attributes(&c, "AAF23x", attrs.as_object().unwrap()).unwrap();
        assert_eq!(p.email, "ada@contoso.example");
        assert_eq!((p.first_name.as_deref(), p.last_name.as_deref()), (Some("Ada"), Some("Lovelace")));
        assert_eq!(p.groups, ["g1", "g2"]);
        assert_eq!(p.id, Profile::from_attributes(&c, "AAF23x", attrs.as_object().unwrap()).unwrap().id);
        assert_ne!(p.id, Profile::from_attributes(&c, "other", attrs.as_object().unwrap()).unwrap().id);
    }

    #[test]
    fn a_missing_email_names_what_was_received() {
        let c = connection("okta", "saml");
        let attrs = serde_json::json!({ "firstName": ["Ada"] });
        let e = Profile::from_attributes(&c, "00u1", attrs.as_object().unwrap()).unwrap_err();
        assert!(e.contains("missing email attribute") && e.contains("`email`") && e.contains("firstName"), "{e}");
        // An email-shaped NameID is the fallback.
        let p = Profile::from_attributes(&c, "ada@x.example", attrs.as_object().unwrap()).unwrap();
        assert_eq!(p.email, "ada@x.example");
    }
}
