//! Webhook endpoints as data: where events go and which types (SQL in
//! `store/webhooks.rs`).

use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

/// A subscription pattern: `*`, an exact type (`sso.enabled`) or a prefix
/// wildcard (`directory.*`). Must match at least one catalog type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPattern(String);

impl EventPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let p = raw.trim();
        let valid_chars =
            p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_' || b == b'*');
        let star_ok =
            !p.contains('*') || (p.ends_with('*') && p.matches('*').count() == 1 && (p == "*" || p.ends_with(".*")));
        if p.is_empty() || !valid_chars || !star_ok {
            return Err(format!("{raw:?} is not an event type or pattern like directory.*"));
        }
        let pattern = Self(p.to_owned());
        if !super::EventKind::ALL.iter().any(|k| pattern.matches(k.as_str())) {
            return Err(format!("{raw:?} matches no event type"));
        }
        Ok(pattern)
    }

    pub fn matches(&self, kind: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => kind.starts_with(prefix),
            None => kind == self.0,
        }
    }

    /// The SQL `LIKE … ESCAPE '\'` form.
    pub fn to_like(&self) -> String {
        let (body, wildcard) = match self.0.strip_suffix('*') {
            Some(prefix) => (prefix, true),
            None => (self.0.as_str(), false),
        };
        let mut out = body.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
        if wildcard {
            out.push('%');
        }
        out
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An endpoint as shown by the API (never the secret).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct Endpoint {
    #[schema(schema_with = crate::fields::schema::object::webhook_endpoint)]
    pub object: &'static str,
    pub id: Uuid,
    #[schema(format = "uri")]
    pub url: String,
    #[schema(required = true)]
    pub description: Option<String>,
    /// Event types or patterns (`sso.*`, or `*` for every event).
    #[schema(example = json!(["sso.*", "directory.user.created"]))]
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why Portico disabled it (e.g. the receiver answered 410 Gone).
    #[schema(required = true)]
    pub disabled_reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// Partial update; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct EndpointUpdate {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<EventPattern>>,
    pub enabled: Option<bool>,
}

/// The stored form of an endpoint's `event_types`.
pub fn join_patterns(patterns: &[EventPattern]) -> String {
    patterns.iter().map(EventPattern::as_str).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_their_sql_form() {
        let all = EventPattern::parse("*").unwrap();
        assert!(all.matches("sso.enabled") && all.to_like() == "%");
        let dir = EventPattern::parse("directory.*").unwrap();
        assert!(dir.matches("directory.group.user_added") && !dir.matches("domain.verified"));
        assert_eq!(dir.to_like(), "directory.%");
        let exact = EventPattern::parse("directory.group.user_added").unwrap();
        assert_eq!(exact.to_like(), "directory.group.user\\_added");
        for bad in ["", "sso.*.x", "SSO.enabled", "sso.enable", "foo.*", "*.enabled", "sso.enabled;drop"] {
            assert!(EventPattern::parse(bad).is_err(), "{bad}");
        }
    }
}
