//! SCIM 2.0 (RFC 7643/7644) as pure logic: resources and their validation,
//! filters, PATCH, projection, list paging, and the error kinds. The HTTP
//! service provider is `http/scim/`, the SQL `store/scim_*.rs`.

pub mod error;
pub mod filter;
pub mod groups;
pub mod list;
pub mod patch;
pub mod project;
pub mod requests;
pub mod users;

pub use error::{ScimErrorKind, ScimFault};
pub use project::lists_schema;

/// SCIM media type (RFC 7644 §8.1).
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// Largest SCIM request body (also advertised in ServiceProviderConfig).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The weak ETag of a resource version.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// The `meta` object of a stored resource.
pub fn meta(
    kind: &str,
    location: String,
    created: time::OffsetDateTime,
    updated: time::OffsetDateTime,
    version: i64,
) -> serde_json::Value {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    serde_json::json!({
        "resourceType": kind,
        "created": created.format(rfc3339).unwrap_or_default(),
        "lastModified": updated.format(rfc3339).unwrap_or_default(),
        "location": location,
        "version": etag(version),
    })
}

/// Microseconds: what both engines store, so a response built before the
/// write equals a re-read.
pub fn now_micros() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1000 * 1000).unwrap_or(now)
}
