//! `/scim/v2/{directory}/Groups`: create, read, list, replace, PATCH (the
//! usual way IdPs change membership), delete.

use std::collections::BTreeSet;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;
use uuid::Uuid;

use super::users::{base_url, check_if_match, versioned};
use super::{ScimBody, ScimError, scim_json};
use crate::http::AppState;
use crate::scim::groups::{IncomingGroup, StoredGroup, first_unknown_member, incoming};
use crate::scim::list::{ListParams, list_response, page_response, paging, parse_body, parse_filter};
use crate::scim::{ScimErrorKind, ScimFault};
use crate::store::directories::ScimPrincipal;

fn not_found(id: &str) -> ScimError {
    ScimFault::new(ScimErrorKind::NotFound, format!("Group {id} not found")).into()
}

async fn respond(
    state: &AppState,
    p: &ScimPrincipal,
    status: StatusCode,
    row: &StoredGroup,
) -> Result<Response, ScimError> {
    let members = state.store.group_members(row.id).await?;
    Ok(versioned(status, row.scim(&base_url(state, p), &members), &row.etag()))
}

/// The group `id` of this directory, or 404.
async fn current(state: &AppState, principal: &ScimPrincipal, id: &str) -> Result<StoredGroup, ScimError> {
    let uuid = Uuid::try_parse(id).map_err(|_| not_found(id))?;
    state.store.scim_group(principal, uuid).await?.ok_or_else(|| not_found(id))
}

/// Writes `group` (over group `id`, or new); its members must be users of
/// this directory (read in one query: IdPs send groups with thousands of
/// members).
async fn write(
    state: &AppState,
    p: &ScimPrincipal,
    id: Option<Uuid>,
    group: IncomingGroup,
) -> Result<Option<StoredGroup>, ScimError> {
    let wanted: Vec<Uuid> = group.members.iter().copied().collect();
    let members = state.store.scim_users_by_ids(p, &wanted).await?;
    let known: BTreeSet<Uuid> = members.iter().map(|u| u.id).collect();
    if let Some(missing) = first_unknown_member(&group.members, &known) {
        return Err(ScimFault::invalid(format!("member {missing} is not a user of this directory")).into());
    }
    Ok(state.store.scim_write_group(p, id, &group, &members).await?)
}

pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    ScimBody(body): ScimBody,
) -> Result<Response, ScimError> {
    let group = incoming(parse_body(&body)?)?;
    let row = write(&state, &principal, None, group).await?.ok_or_else(|| not_found("new"))?;
    respond(&state, &principal, StatusCode::CREATED, &row).await
}

pub async fn get_one(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimError> {
    let row = current(&state, &principal, &id).await?;
    let members = state.store.group_members(row.id).await?;
    let mut body = row.scim(&base_url(&state, &principal), &members);
    crate::scim::project::project(&mut body, params.attributes.as_deref(), params.excluded_attributes.as_deref());
    Ok(versioned(StatusCode::OK, body, &row.etag()))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Query(params): Query<ListParams>,
) -> Result<Response, ScimError> {
    let (start, count) = paging(&params)?;
    let filter = parse_filter(&params)?;
    if filter.is_none() {
        let (total, rows) = state.store.scim_groups_page(&principal, start, count).await?;
        let page = with_members(&state, &principal, &rows).await?;
        return Ok(scim_json(page_response(page, total, start, &params)));
    }
    let all = matching(&state, &principal, filter.as_ref()).await?;
    Ok(scim_json(list_response(all, start, count, &params)))
}

/// Every group of the directory matching `filter`, as SCIM resources: from
/// the displayName/externalId index for the lookups IdPs make before every
/// group change, members of all candidates read with one query.
pub(super) async fn matching(
    state: &AppState,
    principal: &ScimPrincipal,
    filter: Option<&scim_v2::filter::Filter>,
) -> Result<Vec<Value>, ScimError> {
    let lookup = filter.and_then(crate::scim::filter::indexed_group);
    let rows = state.store.scim_groups_matching(principal, lookup.as_ref()).await?;
    let mut all = with_members(state, principal, &rows).await?;
    all.retain(|resource| filter.is_none_or(|f| crate::scim::filter::matches(f, resource)));
    Ok(all)
}

/// `rows` as SCIM resources, the members of all of them read in one query.
async fn with_members(
    state: &AppState,
    principal: &ScimPrincipal,
    rows: &[StoredGroup],
) -> Result<Vec<Value>, ScimError> {
    let base = base_url(state, principal);
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let mut members = state.store.group_members_of(&ids).await?;
    Ok(rows.iter().map(|row| row.scim(&base, &members.remove(&row.id).unwrap_or_default())).collect())
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
    let group = incoming(parse_body(&body)?)?;
    let row = write(&state, &principal, Some(current.id), group).await?.ok_or_else(|| not_found(&id))?;
    respond(&state, &principal, StatusCode::OK, &row).await
}

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
    let members = state.store.group_members(current.id).await?;
    let mut resource = current.scim(&base_url(&state, &principal), &members);
    crate::scim::patch::apply(&mut resource, &request)?;
    let group = incoming(resource)?;
    let row = write(&state, &principal, Some(current.id), group).await?.ok_or_else(|| not_found(&id))?;
    respond(&state, &principal, StatusCode::OK, &row).await
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<ScimPrincipal>,
    Path((_, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ScimError> {
    let current = current(&state, &principal, &id).await?;
    check_if_match(&headers, &current.etag())?;
    if state.store.scim_delete_group(&principal, &current).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}
