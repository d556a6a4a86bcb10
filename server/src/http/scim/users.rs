//! `/scim/v2/{directory}/Users`: create, read, list with filters and
//! pagination, replace, PATCH, delete.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use uuid::Uuid;

use super::{ScimBody, ScimError, scim_json};
use crate::http::AppState;
use crate::scim::list::{ListParams, list_response, page_response, paging, parse_body, parse_filter};
use crate::scim::users::{IncomingUser, StoredUser, incoming};
use crate::scim::{ScimErrorKind, ScimFault, filter};
use crate::store::StoreError;
use crate::store::directories::ScimPrincipal;

/// The directory's SCIM base URL (what the IdP admin configured).
pub(super) fn base_url(state: &AppState, principal: &ScimPrincipal) -> String {
    format!("{}/scim/v2/{}", state.settings.public_url.trim_end_matches('/'), principal.directory_id)
}

fn with_etag(status: StatusCode, user: &StoredUser, base: &str) -> Response {
    versioned(status, user.scim(base), &user.etag())
}

/// A resource response with `ETag`, and `Location` when created.
pub(super) fn versioned(status: StatusCode, body: Value, etag: &str) -> Response {
    let location = body["meta"]["location"].as_str().map(str::to_owned);
    let mut response = scim_json(body);
    *response.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    if status == StatusCode::CREATED
        && let Some(v) = location.and_then(|l| HeaderValue::from_str(&l).ok())
    {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

fn not_found(id: &str) -> ScimError {
    ScimFault::new(ScimErrorKind::NotFound, format!("User {id} not found")).into()
}

/// `If-Match` must name the current version when present.
pub(super) fn check_if_match(headers: &HeaderMap, etag: &str) -> Result<(), ScimError> {
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    Ok(crate::scim::list::check_if_match(if_match, etag)?)
}

/// A userName collision is `409 uniqueness`; other store errors are 500s.
fn written<T>(result: Result<T, StoreError>, user_name: &str) -> Result<T, ScimError> {
    result.map_err(|e| match e {
        StoreError::Conflict(_) => ScimFault::new(
            ScimErrorKind::Uniqueness,
            format!("a user with userName {user_name:?} already exists in this directory"),
        )
        .into(),
        e => e.into(),
    })
}

/// The user `id` of this directory, or 404.
async fn current(state: &AppState, principal: &ScimPrincipal, id: &str) -> Result<StoredUser, ScimError> {
    let uuid = Uuid::try_parse(id).map_err(|_| not_found(id))?;
    state.store.scim_user(principal, uuid).await?.ok_or_else(|| not_found(id))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let user = incoming(parse_body(&body)?)?;
    let user_name = user.user_name.clone();
    let row = written(state.store.scim_create_user(&principal, user).await, &user_name)?;
    Ok(with_etag(StatusCode::CREATED, &row, &base_url(&state, &principal)))
}

pub async fn get_one(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimError> {
    let row = current(&state, &principal, &id).await?;
    let mut body = row.scim(&base_url(&state, &principal));
    crate::scim::project::project(&mut body, params.attributes.as_deref(), params.excluded_attributes.as_deref());
    Ok(versioned(StatusCode::OK, body, &row.etag()))
}

/// Writes `user` over `current` and answers the new version.
async fn replace_with(
    state: &AppState,
    principal: &ScimPrincipal,
    current: &StoredUser,
    user: IncomingUser,
    id: &str,
) -> Result<Response, ScimError> {
    let user_name = user.user_name.clone();
    let row = written(state.store.scim_replace_user(principal, current, user).await, &user_name)?
        .ok_or_else(|| not_found(id))?;
    Ok(with_etag(StatusCode::OK, &row, &base_url(state, principal)))
}

pub async fn replace(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let current = current(&state, &principal, &id).await?;
    check_if_match(&headers, &current.etag())?;
    let user = incoming(parse_body(&body)?)?;
    replace_with(&state, &principal, &current, user, &id).await
}

/// RFC 7644 §3.5.2: every operation applies, or none does.
pub async fn patch(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let request = parse_body(&body)?;
    let current = current(&state, &principal, &id).await?;
    check_if_match(&headers, &current.etag())?;
    let mut resource = current.scim(&base_url(&state, &principal));
    crate::scim::patch::apply(&mut resource, &request)?;
    let user = incoming(resource)?;
    replace_with(&state, &principal, &current, user, &id).await
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ScimError> {
    let current = current(&state, &principal, &id).await?;
    check_if_match(&headers, &current.etag())?;
    if state.store.scim_delete_user(&principal, current.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimError> {
    let (start, count) = paging(&params)?;
    let filter = parse_filter(&params)?;
    if filter.is_none() {
        let (total, rows) = state.store.scim_users_page(&principal, start, count).await?;
        let base = base_url(&state, &principal);
        return Ok(scim_json(page_response(rows.iter().map(|r| r.scim(&base)).collect(), total, start, &params)));
    }
    let all = matching(&state, &principal, filter.as_ref()).await?;
    Ok(scim_json(list_response(all, start, count, &params)))
}

/// Every user of the directory matching `filter`, as SCIM resources.
pub(super) async fn matching(
    state: &AppState,
    principal: &ScimPrincipal,
    filter: Option<&scim_v2::filter::Filter>,
) -> Result<Vec<Value>, ScimError> {
    let lookup = filter.and_then(filter::indexed);
    let candidates = state.store.scim_users_matching(principal, lookup.as_ref()).await?;
    let base = base_url(state, principal);
    Ok(candidates
        .iter()
        .map(|row| row.scim(&base))
        .filter(|resource| filter.is_none_or(|f| filter::matches(f, resource)))
        .collect())
}
