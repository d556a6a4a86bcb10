//! SAML 2.0 service provider (samael + libxmlsec1): SP metadata, the
//! HTTP-Redirect AuthnRequest, and verification of responses POSTed to the
//! ACS. Every failure becomes a precise reason an IT admin can act on.
//!
//! Verification rules: a signature (on the response or the assertion) by a
//! certificate configured for the connection is required; only RSA/ECDSA
//! with SHA-256 or stronger unless SHA-1 is explicitly allowed; only the
//! signed content is read afterwards (samael reduces the document to what the
//! signature covers, defeating signature wrapping); DOCTYPEs are refused
//! before any parser sees the document (no XXE, no entity expansion);
//! Audience, Recipient, Destination, NotBefore/NotOnOrAfter (bounded skew),
//! InResponseTo are checked, and assertion IDs are remembered against replay
//! by the caller.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use samael::crypto::AllowedSignatureAlgorithm;
use samael::metadata::EntityDescriptor;
use samael::service_provider::{Error as SpError, ServiceProvider};
use time::OffsetDateTime;

use super::SamlConfig;

/// Largest accepted SAMLResponse (decoded).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Clock skew tolerated on NotBefore / NotOnOrAfter.
pub const MAX_CLOCK_SKEW_SECS: i64 = 120;

/// This deployment's URLs for one connection.
#[derive(Debug, Clone)]
pub struct SpUrls {
    pub entity_id: String,
    pub acs_url: String,
    pub metadata_url: String,
}

impl SpUrls {
    pub fn new(public_url: &str, connection: uuid::Uuid) -> Self {
        let base = format!("{}/sso/saml/{connection}", public_url.trim_end_matches('/'));
        Self { entity_id: base.clone(), acs_url: format!("{base}/acs"), metadata_url: format!("{base}/metadata") }
    }
}

/// A verified assertion, reduced to what the login needs.
#[derive(Debug, Clone)]
pub struct Verified {
    pub assertion_id: String,
    pub subject: String,
    /// Attribute name → values.
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Until when the assertion ID must be remembered.
    pub remember_until: OffsetDateTime,
    /// The response answered no request of ours (IdP-initiated).
    pub unsolicited: bool,
}

/// A certificate's DER (base64) and expiry.
#[derive(Debug, Clone)]
pub struct CertificateInfo {
    pub der_base64: String,
    pub not_after: OffsetDateTime,
    pub subject: String,
}

/// Reads a PEM or bare base64 certificate.
pub fn certificate_info(text: &str) -> Result<CertificateInfo, String> {
    let body: String =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("-----")).collect::<Vec<_>>().join("");
    let der = STANDARD
        .decode(body.split_whitespace().collect::<String>())
        .map_err(|_| "the certificate is not PEM or base64".to_owned())?;
    let x509 = openssl::x509::X509::from_der(&der).map_err(|_| "the certificate could not be parsed".to_owned())?;
    let epoch = openssl::asn1::Asn1Time::from_unix(0).map_err(|e| e.to_string())?;
    let diff = epoch.diff(x509.not_after()).map_err(|e| e.to_string())?;
    let not_after = OffsetDateTime::from_unix_timestamp(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
        .map_err(|e| e.to_string())?;
    let subject =
        x509.subject_name().entries().filter_map(|e| e.data().to_string().ok()).collect::<Vec<_>>().join(", ");
    Ok(CertificateInfo { der_base64: STANDARD.encode(&der), not_after, subject })
}

/// The PEM form of a base64 DER certificate.
pub fn pem(der_base64: &str) -> String {
    let lines: Vec<String> =
        der_base64.as_bytes().chunks(64).map(|c| String::from_utf8_lossy(c).into_owned()).collect();
    format!("-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n", lines.join("\n"))
}

/// Earliest expiry among `certs` (PEM).
pub fn earliest_expiry(certs: &[String]) -> Option<OffsetDateTime> {
    certs.iter().filter_map(|c| certificate_info(c).ok()).map(|c| c.not_after).min()
}

fn refuse_dtd(xml: &str) -> Result<(), String> {
    if xml.contains("<!DOCTYPE") || xml.contains("<!ENTITY") {
        return Err("the XML contains a DOCTYPE or entity declaration, which SAML never needs; refused".into());
    }
    Ok(())
}

/// Why metadata was not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    /// Not SAML metadata at all; `detail` is the parser's message, which may
    /// quote the document (shown only to whoever supplied the XML).
    NotMetadata { detail: String },
    /// Metadata, but missing what Portico needs (fixed wording).
    Incomplete(String),
}

impl MetadataError {
    /// The message for the one who pasted or uploaded the XML.
    pub fn for_author(&self) -> String {
        match self {
            MetadataError::NotMetadata { detail } => format!("the metadata is not a SAML EntityDescriptor: {detail}"),
            MetadataError::Incomplete(m) => m.clone(),
        }
    }
}

impl From<String> for MetadataError {
    fn from(m: String) -> Self {
        MetadataError::Incomplete(m)
    }
}

impl From<&str> for MetadataError {
    fn from(m: &str) -> Self {
        MetadataError::Incomplete(m.to_owned())
    }
}

/// What an IdP's metadata says: entity ID, HTTP-Redirect SSO URL and
/// signing certificates (PEM).
pub fn parse_idp_metadata(xml: &str) -> Result<SamlConfig, MetadataError> {
    refuse_dtd(xml)?;
    let parsed: Result<EntityDescriptor, _> = xml.parse();
    let entity = parsed.map_err(|e| MetadataError::NotMetadata { detail: e.to_string() })?;
    let entity_id = entity.entity_id.clone().filter(|e| !e.is_empty()).ok_or("the metadata has no entityID")?;
    let idp = entity
        .idp_sso_descriptors
        .as_ref()
        .and_then(|d| d.first())
        .ok_or("the metadata describes no identity provider (IDPSSODescriptor)")?;
    let sso_url = idp
        .single_sign_on_services
        .iter()
        .find(|s| s.binding == samael::metadata::HTTP_REDIRECT_BINDING)
        .or_else(|| idp.single_sign_on_services.first())
        .map(|s| s.location.clone())
        .ok_or("the metadata has no SingleSignOnService")?;
    let mut certificates: Vec<String> = Vec::new();
    for key in &idp.key_descriptors {
        if key.key_use.as_deref().is_some_and(|u| u != "signing" && !u.is_empty()) {
            continue;
        }
        for cert in key.key_info.x509_data.iter().flat_map(|d| d.certificates.iter()) {
            let info = certificate_info(cert)?;
            let pem = pem(&info.der_base64);
            if !certificates.contains(&pem) {
                certificates.push(pem);
            }
        }
    }
    if certificates.is_empty() {
        return Err("the metadata has no signing certificate".into());
    }
    Ok(SamlConfig {
        idp_entity_id: entity_id,
        idp_sso_url: sso_url,
        idp_certificates: certificates,
        ..Default::default()
    })
}

/// Checks a manually entered or fetched SAML configuration.
pub fn validate(config: &SamlConfig) -> Result<(), String> {
    if config.idp_entity_id.trim().is_empty() {
        return Err("the IdP entity ID (issuer) is required".into());
    }
    let url = url::Url::parse(&config.idp_sso_url).map_err(|_| "the IdP SSO URL is not a URL".to_owned())?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err("the IdP SSO URL must be http(s)".into());
    }
    if config.idp_certificates.is_empty() {
        return Err("at least one IdP signing certificate is required: Portico never accepts unsigned responses".into());
    }
    for cert in &config.idp_certificates {
        certificate_info(cert)?;
    }
    Ok(())
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn service_provider(config: &SamlConfig, urls: &SpUrls) -> Result<ServiceProvider, String> {
    let keys: String = config
        .idp_certificates
        .iter()
        .map(|c| certificate_info(c).map(|i| i.der_base64))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|der| {
            format!(
                r#"<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{der}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
            )
        })
        .collect();
    let metadata = format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{sso}"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
        entity = xml_escape(&config.idp_entity_id),
        sso = xml_escape(&config.idp_sso_url),
    );
    let idp_metadata: EntityDescriptor = metadata.parse().map_err(|e| format!("IdP settings unusable: {e}"))?;
    let algorithms = vec![
        AllowedSignatureAlgorithm::RsaSha256,
        AllowedSignatureAlgorithm::RsaSha384,
        AllowedSignatureAlgorithm::RsaSha512,
        AllowedSignatureAlgorithm::EcdsaSha256,
        AllowedSignatureAlgorithm::EcdsaSha384,
        AllowedSignatureAlgorithm::EcdsaSha512,
    ];
    // samael's allow-list has no SHA-1 entry: allowing SHA-1 lifts the list.
    let algorithms = (!config.allow_sha1).then_some(algorithms);
    Ok(ServiceProvider {
        entity_id: Some(urls.entity_id.clone()),
        acs_url: Some(urls.acs_url.clone()),
        metadata_url: Some(urls.metadata_url.clone()),
        slo_url: None,
        idp_metadata,
        max_clock_skew: chrono::Duration::seconds(MAX_CLOCK_SKEW_SECS),
        max_issue_delay: chrono::Duration::seconds(300),
        allowed_signature_algorithms: algorithms,
        ..ServiceProvider::default()
    })
}

/// This SP's metadata for one connection (no single logout: Portico does
/// not keep IdP sessions).
pub fn sp_metadata(urls: &SpUrls) -> Result<String, String> {
    Ok(format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
  <md:SPSSODescriptor AuthnRequestsSigned="false" WantAssertionsSigned="true" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{acs}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"#,
        entity = xml_escape(&urls.entity_id),
        acs = xml_escape(&urls.acs_url),
    ))
}

/// A fresh AuthnRequest ID: `_` + 128 random bits.
pub fn new_request_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("OS random source available");
    format!("_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// The IdP URL (HTTP-Redirect binding) carrying a new AuthnRequest.
pub fn authn_request_url(
    config: &SamlConfig,
    urls: &SpUrls,
    request_id: &str,
    relay_state: &str,
) -> Result<String, String> {
    let sp = service_provider(config, urls)?;
    let mut request = sp.make_authentication_request(&config.idp_sso_url).map_err(|e| e.to_string())?;
    request.id = request_id.to_owned();
    let url = request.redirect(relay_state).map_err(|e| e.to_string())?.ok_or("the IdP SSO URL is missing")?;
    Ok(url.to_string())
}

/// Verifies a base64 `SAMLResponse`. `expected_request` is the stored
/// AuthnRequest ID of the login this response answers (None: unsolicited).
pub fn verify_response(
    config: &SamlConfig,
    urls: &SpUrls,
    encoded: &str,
    expected_request: Option<&str>,
) -> Result<Verified, String> {
    let bytes = STANDARD
        .decode(encoded.split_whitespace().collect::<String>())
        .map_err(|_| "the SAMLResponse is not base64".to_owned())?;
    if bytes.len() > MAX_RESPONSE_BYTES {
        return Err(format!("the SAMLResponse is larger than {} KiB", MAX_RESPONSE_BYTES / 1024));
    }
    let xml = String::from_utf8(bytes).map_err(|_| "the SAMLResponse is not UTF-8 XML".to_owned())?;
    refuse_dtd(&xml)?;
    let unsolicited = expected_request.is_none();
    if unsolicited && !config.allow_idp_initiated {
        return Err(
            "IdP-initiated sign-in is not allowed for this connection: start the sign-in from the application".into()
        );
    }
    let mut sp = service_provider(config, urls)?;
    sp.allow_idp_initiated = unsolicited;
    if unsolicited && has_in_response_to(&xml) {
        return Err("the response answers a sign-in request this login does not know (InResponseTo without a matching request); start again from the application".into());
    }
    let ids: Vec<&str> = expected_request.into_iter().collect();
    let assertion = sp.parse_xml_response(&xml, Some(&ids)).map_err(|e| reason(&e, &xml, config, urls))?;
    // samael checks an AudienceRestriction when there is one; Portico also
    // requires one that names this SP (SAML core 2.5.1.4 leaves it optional).
    let names_us = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.audience_restrictions.as_ref())
        .into_iter()
        .flatten()
        .any(|r| r.audience.iter().any(|a| a.trim() == urls.entity_id));
    if !names_us {
        return Err(format!(
            "no audience: the assertion has no AudienceRestriction naming this application; set the IdP's \
             Audience / SP entity ID to {}",
            urls.entity_id
        ));
    }
    let subject = assertion
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .map(|n| n.value.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or("the assertion has no NameID (subject)")?;
    let mut attributes = serde_json::Map::new();
    for statement in assertion.attribute_statements.iter().flatten() {
        for attribute in &statement.attributes {
            let Some(name) = attribute.name.clone().or_else(|| attribute.friendly_name.clone()) else { continue };
            let values: Vec<serde_json::Value> =
                attribute.values.iter().filter_map(|v| v.value.clone()).map(serde_json::Value::String).collect();
            attributes.insert(name, serde_json::Value::Array(values));
        }
    }
    let not_on_or_after = assertion
        .conditions
        .as_ref()
        .and_then(|c| c.not_on_or_after)
        .map(|t| t.timestamp())
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok());
    let remember_until = not_on_or_after.unwrap_or_else(|| OffsetDateTime::now_utc() + time::Duration::hours(1))
        + time::Duration::seconds(MAX_CLOCK_SKEW_SECS);
    Ok(Verified { assertion_id: assertion.id.clone(), subject, attributes, remember_until, unsolicited })
}

fn has_in_response_to(xml: &str) -> bool {
    xml.contains("InResponseTo=")
}

/// An actionable reason for a samael error.
fn reason(e: &SpError, xml: &str, config: &SamlConfig, urls: &SpUrls) -> String {
    match e {
        SpError::FailedToValidateSignature => {
            if !xml.contains("SignatureValue") {
                "unsigned response: the IdP must sign the response or the assertion".into()
            } else if xml.contains("xmldsig#rsa-sha1") && !config.allow_sha1 {
                "signature uses RSA-SHA1, which is refused: switch the IdP to RSA-SHA256".into()
            } else {
                "bad signature: the response is not signed by the certificate configured for this connection \
                 (was the IdP certificate rotated? upload the current one)"
                    .into()
            }
        }
        SpError::AssertionConditionAudienceRestrictionFailed { requirement } => {
            format!(
                "wrong audience: the assertion is not for this application; set the IdP's Audience / SP entity ID to {requirement}"
            )
        }
        SpError::AssertionExpired { time }
        | SpError::ResponseExpired { time }
        | SpError::AssertionConditionExpired { time }
        | SpError::AssertionSubjectConfirmationExpired { time } => format!(
            "expired assertion: valid until {time}; sign in again, and check the IdP's clock if this persists (clock skew)"
        ),
        SpError::AssertionConditionExpiredBefore { time }
        | SpError::AssertionSubjectConfirmationExpiredBefore { time } => {
            format!("assertion not yet valid (until {time}): the IdP's clock is ahead (clock skew)")
        }
        SpError::AssertionRecipientMismatch { assertion_recipient, .. } => format!(
            "wrong recipient: the assertion is addressed to {} but the ACS URL is {}",
            assertion_recipient.as_deref().unwrap_or("nothing"),
            urls.acs_url
        ),
        SpError::DestinationValidationError { response_destination, .. } => format!(
            "wrong destination: the response is addressed to {} but the ACS URL is {}",
            response_destination.as_deref().unwrap_or("nothing"),
            urls.acs_url
        ),
        SpError::AssertionInResponseToInvalid { .. } | SpError::ResponseInResponseToInvalid { .. } => {
            "the response does not answer the sign-in request started here (InResponseTo mismatch); start again".into()
        }
        SpError::AssertionIssuerMismatch { issuer, .. } | SpError::ResponseIssuerMismatch { issuer, .. } => format!(
            "wrong issuer: the response comes from {} but the connection expects {}",
            issuer.as_deref().unwrap_or("an unnamed issuer"),
            config.idp_entity_id
        ),
        SpError::ResponseBadStatusCode { code } => format!("the identity provider refused the sign-in: {code}"),
        SpError::AssertionBearerSubjectConfirmationMissing | SpError::AssertionSubjectConfirmationMissing => {
            "the assertion has no bearer SubjectConfirmation with NotOnOrAfter and Recipient".into()
        }
        SpError::EncryptedAssertionsNotYetSupported
        | SpError::MissingPrivateKeySP
        | SpError::FailedToDecryptAssertion => {
            "the assertion is encrypted; turn off assertion encryption in the IdP".into()
        }
        other => format!("the SAML response could not be read: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sp_metadata_names_the_acs_url() {
        let urls = SpUrls::new("https://portico.example", uuid::Uuid::nil());
        let xml = sp_metadata(&urls).unwrap();
        assert!(xml.contains("https://portico.example/sso/saml/00000000-0000-0000-0000-000000000000/acs"), "{xml}");
    }
}
