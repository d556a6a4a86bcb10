//! Organizations: the vendor's customers. Each owns its domains, SSO
//! connections and directories. This module holds the types and their
//! parsing; the SQL is `store/orgs.rs`.

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// A validated organization display name: 1–200 characters after trimming,
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgName(String);

impl OrgName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("must not be empty".into());
        }
        if name.chars().count() > 200 {
            return Err("must be at most 200 characters".into());
        }
        if name.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The vendor's own identifier for an organization (e.g. its tenant id):
/// 1–255 visible characters, no surrounding whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalId(String);

impl ExternalId {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty (send null to clear it)".into());
        }
        if raw.len() > 255 {
            return Err("must be at most 255 bytes".into());
        }
        if raw.trim() != raw {
            return Err("must not start or end with whitespace".into());
        }
        if raw.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A DNS domain name in canonical form: lowercase ASCII (IDNs in punycode),
/// no trailing dot, at least two labels, each 1–63 of `a-z0-9-` not starting
/// or ending with `-`, 253 characters at most, and a non-numeric TLD.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct DomainName(String);

impl DomainName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let lowered = raw.trim().trim_end_matches('.').to_ascii_lowercase();
        if lowered.is_empty() {
            return Err("must not be empty".into());
        }
        if !lowered.is_ascii() {
            return Err(format!("{raw:?} contains non-ASCII characters; use its punycode (xn--) form"));
        }
        if lowered.contains("://") || lowered.contains('/') || lowered.contains('@') {
            return Err(format!("{raw:?} is not a bare domain name (no scheme, path or email)"));
        }
        if lowered.len() > 253 {
            return Err(format!("{raw:?} is longer than 253 characters"));
        }
        let labels: Vec<&str> = lowered.split('.').collect();
        if labels.len() < 2 {
            return Err(format!("{raw:?} needs at least two labels, like example.com"));
        }
        for label in &labels {
            let ok = !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-');
            if !ok {
                return Err(format!("{raw:?} has an invalid label {label:?}"));
            }
        }
        if labels.last().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
            return Err(format!("{raw:?} is not a domain name (numeric top-level label)"));
        }
        Ok(Self(lowered))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub use app::dto::DomainState;

/// A domain as stored on an organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Domain)]
pub struct OrgDomain {
    #[schema(example = "acme.com")]
    pub domain: String,
    #[schema(schema_with = crate::fields::schema::domain_state)]
    pub state: DomainState,
}

/// An organization as returned by the API and carried in events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Organization {
    #[schema(schema_with = crate::fields::schema::object::organization)]
    pub object: &'static str,
    pub id: Uuid,
    pub name: String,
    #[schema(required = true)]
    pub external_id: Option<String>,
    pub domains: Vec<OrgDomain>,
    /// Overrides of the vendor's portal branding for this organization.
    pub branding: OrgBranding,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Portal branding overrides of one organization; unset fields fall back to
/// the vendor's settings (`vendor.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = Branding)]
pub struct OrgBranding {
    /// An `https://` URL of at most 2048 characters.
    #[schema(format = "uri", max_length = 2048)]
    pub logo_url: Option<String>,
    /// `#rrggbb`.
    #[schema(pattern = "^#[0-9a-fA-F]{6}$", example = "#1a2b3c")]
    pub accent_color: Option<String>,
}

impl OrgBranding {
    /// Validates both fields; errors name `branding.<field>`.
    pub fn parse(logo_url: Option<&str>, accent_color: Option<&str>) -> Result<Self, Vec<(String, String)>> {
        let mut errors = Vec::new();
        if let Some(url) = logo_url {
            let ok = url.starts_with("https://")
                && url.len() <= 2048
                && !url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '"');
            if !ok {
                errors.push(("branding.logo_url".into(), "must be an https:// URL of at most 2048 characters".into()));
            }
        }
        if let Some(color) = accent_color
            && crate::config::parse_hex_color(color).is_none()
        {
            errors.push(("branding.accent_color".into(), "must be a colour like #1a2b3c".into()));
        }
        if errors.is_empty() {
            Ok(Self {
                logo_url: logo_url.map(str::to_owned),
                accent_color: accent_color.map(|c| c.to_ascii_lowercase()),
            })
        } else {
            Err(errors)
        }
    }
}

/// Input for [`Store::create_org`].
#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub name: OrgName,
    pub external_id: Option<ExternalId>,
    pub domains: Vec<DomainName>,
    pub branding: OrgBranding,
}

/// Partial update: `None` leaves a field unchanged. `external_id:
/// Some(None)` clears it; `domains: Some(list)` replaces the whole set.
#[derive(Debug, Clone, Default)]
pub struct OrgUpdate {
    pub name: Option<OrgName>,
    pub external_id: Option<Option<ExternalId>>,
    pub domains: Option<Vec<DomainName>>,
    /// Replaces both branding fields.
    pub branding: Option<OrgBranding>,
}

impl OrgUpdate {
    /// True when no field is given: nothing to write, no event to record.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.external_id.is_none() && self.domains.is_none() && self.branding.is_none()
    }
}

/// Filters and cursor for [`Store::list_orgs`].
#[derive(Debug, Clone, Default)]
pub struct OrgQuery {
    /// Return organizations with ids greater than this (cursor).
    pub after: Option<Uuid>,
    /// 1–100.
    pub limit: u32,
    pub external_id: Option<String>,
    pub domain: Option<DomainName>,
}

/// One page of organizations, in creation order.
#[derive(Debug, Clone)]
pub struct OrgPage {
    pub data: Vec<Organization>,
    /// Cursor for the next page, `None` on the last page.
    pub next_after: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names_are_canonicalised() {
        assert_eq!(DomainName::parse(" Example.COM. ").unwrap().as_str(), "example.com");
        assert_eq!(DomainName::parse("xn--bcher-kva.example").unwrap().as_str(), "xn--bcher-kva.example");
    }

    #[test]
    fn bad_domain_names_are_rejected() {
        for bad in [
            "",
            "localhost",
            "-a.com",
            "a-.com",
            "a..com",
            "https://a.com",
            "a.com/x",
            "bob@a.com",
            "bücher.de",
            "1.2.3.4",
            "a_b.com",
        ] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        let long = format!("{}.com", "a".repeat(64));
        assert!(DomainName::parse(&long).is_err());
    }

    #[test]
    fn org_names_are_trimmed_and_bounded() {
        assert_eq!(OrgName::parse("  Acme  ").unwrap().as_str(), "Acme");
        assert!(OrgName::parse("   ").is_err());
        assert!(OrgName::parse(&"x".repeat(201)).is_err());
        assert!(OrgName::parse("a\u{0}b").is_err());
    }

    #[test]
    fn external_ids_keep_exact_bytes() {
        assert_eq!(ExternalId::parse("tenant-42").unwrap().as_str(), "tenant-42");
        assert!(ExternalId::parse(" tenant").is_err());
        assert!(ExternalId::parse("").is_err());
    }
}
