//! Turning what an admin enters (API or portal) into a checked connection:
//! SAML metadata by URL, by XML or by hand; OIDC issuer (discovery is tried
//! on save), client ID and secret (sealed at once).

use serde::{Deserialize, Serialize};

use super::{AttributeMap, Connection, ConnectionInput, IdpConfig, OidcConfig, SamlConfig, oidc::OidcProviders, saml};
use crate::crypto::Cipher;
use crate::egress::{Egress, Redirects};
use crate::fields::FieldError;

/// A connection as submitted: `saml` details for a SAML connection, `oidc`
/// for an OIDC one.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionRequest {
    /// `saml` or `oidc`.
    #[serde(rename = "type")]
    #[schema(schema_with = kind_schema)]
    pub kind: String,
    #[schema(schema_with = provider_schema)]
    pub provider: String,
    pub name: Option<String>,
    pub saml: Option<SamlRequest>,
    pub oidc: Option<OidcRequest>,
    pub attribute_map: Option<AttributeMap>,
}

fn kind_schema() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(&["saml", "oidc"])
}

fn provider_schema() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(super::PROVIDERS)
}

/// SAML details: metadata XML, a metadata URL, or the three values by hand.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SamlRequest {
    pub metadata_xml: Option<String>,
    pub metadata_url: Option<String>,
    pub idp_entity_id: Option<String>,
    pub idp_sso_url: Option<String>,
    /// PEM.
    pub idp_certificate: Option<String>,
    #[serde(default)]
    pub allow_idp_initiated: bool,
    #[serde(default)]
    pub allow_sha1: bool,
}

/// OIDC details; the issuer's discovery document is fetched on save.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OidcRequest {
    pub issuer: String,
    pub client_id: String,
    /// Omitted on update: the stored one is kept.
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
}

fn field(field: &str, message: impl Into<String>) -> Vec<FieldError> {
    vec![FieldError { field: field.into(), message: message.into() }]
}

/// Fetches SAML metadata from `url` through the egress-checked client (10 s,
/// 1 MiB, up to three checked redirects). Errors describe the answer, never
/// repeat it: the URL may point at something internal.
async fn fetch_metadata(egress: &Egress, url: &str) -> Result<SamlConfig, String> {
    let parsed = egress.policy().parse_url(url, true).map_err(|e| e.to_string())?;
    let accept = "application/samlmetadata+xml, application/xml;q=0.9, text/xml;q=0.8";
    let fetched = egress
        .get(&parsed, accept, Redirects::Checked, crate::egress::DEFAULT_MAX_BYTES)
        .await
        .map_err(|e| format!("could not be fetched: {e}"))?;
    if !fetched.is_success() {
        return Err(format!("answered {}", fetched.describe()));
    }
    let described = fetched.describe();
    let xml = String::from_utf8(fetched.body).map_err(|_| format!("answered {described}, which is not UTF-8 XML"))?;
    saml::parse_idp_metadata(&xml).map_err(|e| match e {
        saml::MetadataError::NotMetadata { .. } => {
            format!("answered {described}, which is not SAML metadata (an EntityDescriptor)")
        }
        saml::MetadataError::Incomplete(m) => m,
    })
}

/// The stored OIDC settings an update starts from.
#[derive(Debug, Clone, Copy)]
pub struct StoredOidc<'a> {
    pub config: &'a OidcConfig,
    pub has_secret: bool,
}

impl<'a> StoredOidc<'a> {
    /// The OIDC side of a stored connection (`None` for SAML).
    pub fn of(current: &'a super::ConnectionWithSecret) -> Option<Self> {
        match &current.connection.idp {
            IdpConfig::Oidc(config) => Some(Self { config, has_secret: current.sealed_client_secret.is_some() }),
            IdpConfig::Saml(_) => None,
        }
    }
}

/// Checks and normalizes a submission. `stored`: an update may omit the
/// OIDC client secret to keep the stored one, but only while the issuer and
/// client ID stay the same (a secret is only ever sent to the issuer it was
/// entered for).
pub async fn build(
    request: ConnectionRequest,
    cipher: &Cipher,
    oidc: &OidcProviders,
    egress: &Egress,
    stored: Option<StoredOidc<'_>>,
) -> Result<ConnectionInput, Vec<FieldError>> {
    if !super::PROVIDERS.contains(&request.provider.as_str()) {
        return Err(field("provider", format!("must be one of {}", super::PROVIDERS.join(", "))));
    }
    let name =
        request.name.as_deref().map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).unwrap_or_else(|| {
            let provider = match request.provider.as_str() {
                "okta" => "Okta",
                "entra" => "Microsoft Entra ID",
                "google" => "Google Workspace",
                _ => "Identity provider",
            };
            format!("{provider} ({})", request.kind.to_uppercase())
        });
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(field("name", "must be at most 200 characters, no control characters"));
    }
    let attribute_map =
        request.attribute_map.clone().unwrap_or_else(|| AttributeMap::defaults(&request.provider, &request.kind));
    if attribute_map.email.trim().is_empty() {
        return Err(field("attribute_map.email", "must name the attribute that carries the email"));
    }
    match request.kind.as_str() {
        "saml" => {
            let s = request.saml.ok_or_else(|| field("saml", "is required for a SAML connection"))?;
            let mut config = if let Some(xml) = s.metadata_xml.as_deref().filter(|x| !x.trim().is_empty()) {
                saml::parse_idp_metadata(xml).map_err(|e| field("saml.metadata_xml", e.for_author()))?
            } else if let Some(url) = s.metadata_url.as_deref().filter(|u| !u.trim().is_empty()) {
                let mut config = fetch_metadata(egress, url.trim()).await.map_err(|e| field("saml.metadata_url", e))?;
                config.metadata_url = Some(url.trim().to_owned());
                config
            } else {
                let cert = s.idp_certificate.clone().unwrap_or_default();
                let info = saml::certificate_info(&cert).map_err(|e| field("saml.idp_certificate", e))?;
                SamlConfig {
                    idp_entity_id: s.idp_entity_id.clone().unwrap_or_default().trim().to_owned(),
                    idp_sso_url: s.idp_sso_url.clone().unwrap_or_default().trim().to_owned(),
                    idp_certificates: vec![saml::pem(&info.der_base64)],
                    ..SamlConfig::default()
                }
            };
            config.allow_idp_initiated = s.allow_idp_initiated;
            config.allow_sha1 = s.allow_sha1;
            saml::validate(&config).map_err(|e| field("saml", e))?;
            let expiry = saml::earliest_expiry(&config.idp_certificates);
            Ok(ConnectionInput {
                provider: request.provider,
                name,
                idp: IdpConfig::Saml(config),
                sealed_client_secret: None,
                attribute_map,
                certificate_expires_at: expiry,
            })
        }
        "oidc" => {
            let o = request.oidc.ok_or_else(|| field("oidc", "is required for an OIDC connection"))?;
            let config = OidcConfig {
                issuer: o.issuer.trim().to_owned(),
                client_id: o.client_id.trim().to_owned(),
                scopes: o.scopes,
            };
            super::oidc::validate(&config).map_err(|e| field("oidc", e))?;
            let secret = o.client_secret.as_deref().map(str::trim).filter(|s| !s.is_empty());
            if secret.is_none() {
                match stored {
                    Some(s)
                        if s.has_secret
                            && (s.config.issuer != config.issuer || s.config.client_id != config.client_id) =>
                    {
                        return Err(field(
                            "oidc.client_secret",
                            "is required again: the issuer or client ID changed, and a stored secret is only ever \
                             sent to the issuer and client it was entered for",
                        ));
                    }
                    Some(s) if s.has_secret => {}
                    _ => return Err(field("oidc.client_secret", "is required")),
                }
            }
            oidc.discover(&config.issuer, true).await.map_err(|e| field("oidc.issuer", e))?;
            Ok(ConnectionInput {
                provider: request.provider,
                name,
                idp: IdpConfig::Oidc(config),
                sealed_client_secret: secret.map(|s| cipher.seal(s)),
                attribute_map,
                certificate_expires_at: None,
            })
        }
        _ => Err(field("type", "must be saml or oidc")),
    }
}

/// What to paste into the IdP.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SpValues {
    /// SAML: SP entity ID (Audience).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    /// SAML: Assertion Consumer Service URL (Reply URL).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acs_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata_url: Option<String>,
    /// OIDC: redirect (callback) URI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
}

pub fn sp_values(public_url: &str, c: &Connection) -> SpValues {
    if c.connection_type == "saml" {
        let urls = crate::sso::saml::SpUrls::new(public_url, c.id);
        SpValues {
            entity_id: Some(urls.entity_id),
            acs_url: Some(urls.acs_url),
            metadata_url: Some(urls.metadata_url),
            redirect_uri: None,
        }
    } else {
        SpValues {
            entity_id: None,
            acs_url: None,
            metadata_url: None,
            redirect_uri: Some(format!("{}/sso/oidc/callback", public_url.trim_end_matches('/'))),
        }
    }
}
