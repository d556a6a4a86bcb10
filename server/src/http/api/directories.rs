//! `/api/v1/organizations/{id}/directories` and `/api/v1/directories/{id}`:
//! SCIM directories and their bearer tokens.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{ApiJson, parse_id};
use crate::http::AppState;
use crate::http::error::{ApiError, FieldError};
use crate::store::directories::{Directory, PROVIDERS, WithToken};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/organizations/{id}/directories", get(list).post(create))
        .route("/directories/{id}", get(show).delete(remove))
        .route("/directories/{id}/rotate-token", post(rotate))
        .route("/directories/{id}/users", get(users))
        .route("/directories/{id}/groups", get(groups))
}

/// A directory with where the IdP should send SCIM requests.
#[derive(Serialize)]
struct DirectoryOut {
    object: &'static str,
    #[serde(flatten)]
    directory: Directory,
    scim_base_url: String,
    /// Only on create and rotate.
    #[serde(skip_serializing_if = "Option::is_none")]
    bearer_token: Option<String>,
}

fn out(state: &AppState, directory: Directory, token: Option<String>) -> DirectoryOut {
    let base = state.settings.public_url.trim_end_matches('/');
    DirectoryOut {
        object: "directory",
        scim_base_url: format!("{base}/scim/v2/{}", directory.id),
        directory,
        bearer_token: token,
    }
}

fn with_token(state: &AppState, w: WithToken) -> DirectoryOut {
    out(state, w.directory, Some(w.token.expose_secret().to_owned()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    provider: String,
}

async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<DirectoryOut>), ApiError> {
    let org = parse_id(&id, "organization")?;
    let mut errors = Vec::new();
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        errors.push(FieldError {
            field: "name".into(),
            message: "must be 1–200 characters, no control characters".into(),
        });
    }
    if !PROVIDERS.contains(&body.provider.as_str()) {
        errors
            .push(FieldError { field: "provider".into(), message: format!("must be one of {}", PROVIDERS.join(", ")) });
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let created = state
        .store
        .create_directory(org, name, &body.provider)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))?;
    tracing::info!(directory_id = %created.directory.id, org_id = %org, "directory created");
    Ok((StatusCode::CREATED, Json(with_token(&state, created))))
}

#[derive(Serialize)]
struct DirectoryList {
    object: &'static str,
    data: Vec<DirectoryOut>,
}

async fn list(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<DirectoryList>, ApiError> {
    let org = parse_id(&id, "organization")?;
    state.store.get_org(org).await?.ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))?;
    let data = state.store.list_directories(org).await?.into_iter().map(|d| out(&state, d, None)).collect();
    Ok(Json(DirectoryList { object: "list", data }))
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<DirectoryOut>, ApiError> {
    let uuid = parse_id(&id, "directory")?;
    let dir = state
        .store
        .get_directory(uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("directory {id} not found")))?;
    Ok(Json(out(&state, dir, None)))
}

async fn rotate(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<DirectoryOut>, ApiError> {
    let uuid = parse_id(&id, "directory")?;
    let rotated = state
        .store
        .rotate_directory_token(uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("directory {id} not found")))?;
    tracing::info!(directory_id = %uuid, "directory token rotated");
    Ok(Json(with_token(&state, rotated)))
}

async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let uuid = parse_id(&id, "directory")?;
    if state.store.delete_directory(uuid).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("directory {id} not found")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserParams {
    after: Option<String>,
    limit: Option<i64>,
    email: Option<String>,
    username: Option<String>,
    state: Option<String>,
}

#[derive(Serialize)]
struct Page<T> {
    object: &'static str,
    data: Vec<T>,
    list_metadata: PageMeta,
}

#[derive(Serialize)]
struct PageMeta {
    /// Pass as `after` for the next page; `null` on the last one.
    after: Option<Uuid>,
}

fn page_params(after: Option<&str>, limit: Option<i64>) -> Result<(Option<Uuid>, i64), ApiError> {
    let after = after
        .map(|a| Uuid::try_parse(a).map_err(|_| ApiError::invalid("after", "must be an id from list_metadata.after")))
        .transpose()?;
    let limit = limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be between 1 and 500"));
    }
    Ok((after, limit))
}

async fn directory_for(state: &AppState, id: &str) -> Result<Uuid, ApiError> {
    let uuid = parse_id(id, "directory")?;
    state.store.get_directory(uuid).await?.ok_or_else(|| ApiError::NotFound(format!("directory {id} not found")))?;
    Ok(uuid)
}

/// `GET /directories/{id}/users`: normalized users with their groups.
async fn users(
    State(state): State<AppState>,
    Path(id): Path<String>,
    super::ApiQuery(p): super::ApiQuery<UserParams>,
) -> Result<Json<Page<crate::scim::users::NormalizedUser>>, ApiError> {
    let directory = directory_for(&state, &id).await?;
    let (after, limit) = page_params(p.after.as_deref(), p.limit)?;
    let active = match p.state.as_deref() {
        None => None,
        Some("active") => Some(true),
        Some("inactive") => Some(false),
        Some(_) => return Err(ApiError::invalid("state", "must be active or inactive")),
    };
    let query = crate::scim::users::UserQuery { after, limit, email: p.email, username: p.username, active };
    let (data, more) = state.store.directory_users(directory, &query).await?;
    let after = more.then(|| data.last().map(|u| u.id)).flatten();
    Ok(Json(Page { object: "list", data, list_metadata: PageMeta { after } }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupParams {
    after: Option<String>,
    limit: Option<i64>,
}

/// `GET /directories/{id}/groups`.
async fn groups(
    State(state): State<AppState>,
    Path(id): Path<String>,
    super::ApiQuery(p): super::ApiQuery<GroupParams>,
) -> Result<Json<Page<crate::scim::groups::NormalizedGroup>>, ApiError> {
    let directory = directory_for(&state, &id).await?;
    let (after, limit) = page_params(p.after.as_deref(), p.limit)?;
    let (data, more) = state.store.directory_groups(directory, after, limit).await?;
    let after = more.then(|| data.last().map(|g| g.id)).flatten();
    Ok(Json(Page { object: "list", data, list_metadata: PageMeta { after } }))
}
