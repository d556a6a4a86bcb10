//! Request bodies and list queries (RFC 7644 §3.4.2): parsing the JSON body,
//! `filter`, `startIndex`/`count`, and building a `ListResponse` page.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{ScimErrorKind, ScimFault};

const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Largest page a client may ask for.
pub const MAX_COUNT: i64 = 1000;

/// The query of a list (GET parameters or a SearchRequest body).
#[derive(Debug, Deserialize, Default)]
pub struct ListParams {
    pub filter: Option<String>,
    #[serde(rename = "startIndex")]
    pub start_index: Option<String>,
    pub count: Option<String>,
    pub attributes: Option<String>,
    #[serde(rename = "excludedAttributes")]
    pub excluded_attributes: Option<String>,
}

/// A request body as JSON: `400 invalidSyntax` when it is not, `400
/// invalidValue` when a string holds NUL (no engine stores it the same).
pub fn parse_body(body: &[u8]) -> Result<Value, ScimFault> {
    let value = serde_json::from_slice(body)
        .map_err(|e| ScimFault::new(ScimErrorKind::InvalidSyntax, format!("malformed JSON: {e}")))?;
    if crate::fields::json_has_nul(body) {
        return Err(ScimFault::invalid("strings must not contain NUL characters (\\u0000)"));
    }
    Ok(value)
}

fn int_param(raw: Option<&str>, name: &str) -> Result<Option<i64>, ScimFault> {
    raw.map(|s| s.trim().parse::<i64>().map_err(|_| ScimFault::invalid(format!("`{name}` must be an integer"))))
        .transpose()
}

/// `startIndex` (1-based, < 1 means 1) and `count` (clamped to 0..=1000).
pub fn paging(params: &ListParams) -> Result<(i64, i64), ScimFault> {
    let start = int_param(params.start_index.as_deref(), "startIndex")?.unwrap_or(1).max(1);
    let count = int_param(params.count.as_deref(), "count")?.unwrap_or(100).clamp(0, MAX_COUNT);
    Ok((start, count))
}

/// The parsed `filter` parameter, or `400 invalidFilter`.
pub fn parse_filter(params: &ListParams) -> Result<Option<scim_v2::filter::Filter>, ScimFault> {
    let invalid = |detail: String| ScimFault::new(ScimErrorKind::InvalidFilter, detail);
    match params.filter.as_deref().map(str::trim).filter(|f| !f.is_empty()) {
        None => Ok(None),
        Some(raw) if raw.contains('\0') => Err(invalid("the filter must not contain NUL characters".into())),
        Some(raw) => raw
            .parse::<scim_v2::filter::Filter>()
            .map(Some)
            .map_err(|e| invalid(format!("invalid filter {raw:?}: {e}"))),
    }
}

/// A ListResponse page of already-filtered resources, projected.
pub fn list_response(all: Vec<Value>, start: i64, count: i64, params: &ListParams) -> Value {
    let total = all.len() as i64;
    let page = all.into_iter().skip((start - 1) as usize).take(count as usize).collect();
    page_response(page, total, start, params)
}

/// A ListResponse of one page (`total` matches in all), projected.
pub fn page_response(mut page: Vec<Value>, total: i64, start: i64, params: &ListParams) -> Value {
    for r in &mut page {
        super::project::project(r, params.attributes.as_deref(), params.excluded_attributes.as_deref());
    }
    json!({
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "itemsPerPage": page.len(),
        "startIndex": start,
        "Resources": page,
    })
}

/// `If-Match` (the header's value, if sent) must name the current version
/// `etag`, or be `*`.
pub fn check_if_match(if_match: Option<&str>, etag: &str) -> Result<(), ScimFault> {
    match if_match {
        Some(v) if v.trim() != "*" && v.split(',').all(|t| t.trim() != etag) => Err(ScimFault::new(
            ScimErrorKind::VersionMismatch,
            format!("the resource changed; current version is {etag}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_accepts_the_current_version_or_a_star_only() {
        assert!(check_if_match(None, "W/\"2\"").is_ok());
        assert!(check_if_match(Some("*"), "W/\"2\"").is_ok());
        assert!(check_if_match(Some("W/\"1\", W/\"2\""), "W/\"2\"").is_ok());
        let stale = check_if_match(Some("W/\"1\""), "W/\"2\"").unwrap_err();
        assert_eq!(stale.kind, ScimErrorKind::VersionMismatch);
    }

    #[test]
    fn paging_clamps_and_refuses_non_integers() {
        let p = ListParams { start_index: Some("0".into()), count: Some("5000".into()), ..Default::default() };
        assert_eq!(paging(&p).unwrap(), (1, MAX_COUNT));
        let p = ListParams { count: Some("ten".into()), ..Default::default() };
        assert_eq!(paging(&p).unwrap_err().kind, ScimErrorKind::InvalidValue);
    }
}
