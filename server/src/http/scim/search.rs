//! `POST …/.search` (RFC 7644 §3.4.3): the query of a GET list, in a body.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use serde_json::Value;

use super::{ScimBody, ScimError, scim_json};
use crate::http::AppState;
use crate::scim::ScimFault;
use crate::scim::list::{ListParams, list_response, paging, parse_body, parse_filter};
use crate::store::directories::ScimPrincipal;

const SEARCH_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The SearchRequest body as list parameters.
fn params(body: &[u8]) -> Result<ListParams, ScimError> {
    let v = parse_body(body)?;
    let obj = v.as_object().ok_or_else(|| ScimFault::invalid("the body must be a SearchRequest object"))?;
    if !crate::scim::lists_schema(obj, SEARCH_SCHEMA) {
        return Err(ScimFault::invalid(format!("`schemas` must be [\"{SEARCH_SCHEMA}\"]")).into());
    }
    let get = |k: &str| obj.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v);
    let text = |k: &str| -> Result<Option<String>, ScimError> {
        match get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Array(items)) => Ok(Some(items.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","))),
            Some(_) => Err(ScimFault::invalid(format!("`{k}` has the wrong type")).into()),
        }
    };
    Ok(ListParams {
        filter: text("filter")?,
        start_index: text("startIndex")?,
        count: text("count")?,
        attributes: text("attributes")?,
        excluded_attributes: text("excludedAttributes")?,
    })
}

/// Which resources a search covers.
#[derive(Clone, Copy)]
struct Scope {
    users: bool,
    groups: bool,
}

async fn search(state: &AppState, principal: &ScimPrincipal, body: &[u8], scope: Scope) -> Result<Response, ScimError> {
    let p = params(body)?;
    let (start, count) = paging(&p)?;
    let filter = parse_filter(&p)?;
    let mut all = Vec::new();
    if scope.users {
        all.extend(super::users::matching(state, principal, filter.as_ref()).await?);
    }
    if scope.groups {
        all.extend(super::groups::matching(state, principal, filter.as_ref()).await?);
    }
    Ok(scim_json(list_response(all, start, count, &p)))
}

pub async fn users(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    search(&state, &principal, &body, Scope { users: true, groups: false }).await
}

pub async fn groups(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    search(&state, &principal, &body, Scope { users: false, groups: true }).await
}

/// Searches users and groups together.
pub async fn root(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    search(&state, &principal, &body, Scope { users: true, groups: true }).await
}
