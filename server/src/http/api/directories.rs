//! `/api/v1/organizations/{id}/directories` and `/api/v1/directories/{id}`:
//! SCIM directories and their bearer tokens.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{ApiJson, parse_id};
use crate::http::AppState;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::scim::groups::NormalizedGroup;
use crate::scim::users::NormalizedUser;
use crate::store::directories::{Directory, PROVIDERS, WithToken};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, remove))
        .routes(routes!(rotate))
        .routes(routes!(users))
        .routes(routes!(groups))
}

/// A SCIM directory with where the IdP should send SCIM requests.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Directory)]
struct DirectoryOut {
    #[schema(schema_with = crate::fields::schema::object::directory)]
    object: &'static str,
    #[serde(flatten)]
    directory: Directory,
    /// The SCIM base URL to give the IdP.
    #[schema(format = "uri")]
    scim_base_url: String,
    /// The SCIM bearer token to give the IdP: only on create and
    /// rotate-token.
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

/// A new SCIM directory.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateDirectory)]
struct CreateBody {
    /// 1–200 characters, no control characters.
    #[schema(min_length = 1, max_length = 200, example = "Okta")]
    name: String,
    /// The IdP, for its setup steps; `generic` covers the rest.
    #[schema(schema_with = provider_schema)]
    provider: String,
}

fn provider_schema() -> utoipa::openapi::schema::Object {
    crate::fields::schema::one_of_words(PROVIDERS)
}

/// Create a SCIM directory; the response carries its bearer token, shown only here.
#[utoipa::path(
    post,
    path = "/organizations/{id}/directories",
    operation_id = "createDirectory",
    tag = "directories",
    params(("id" = Uuid, Path, description = "Organization id")),
    request_body = CreateBody,
    responses(
        (status = 201, description = "Created, with `bearer_token`", body = DirectoryOut),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// An organization's directories.
#[derive(Serialize, utoipa::ToSchema)]
struct DirectoryList {
    #[schema(schema_with = crate::fields::schema::object::list)]
    object: &'static str,
    data: Vec<DirectoryOut>,
}

/// The organization's SCIM directories (never their tokens).
#[utoipa::path(
    get,
    path = "/organizations/{id}/directories",
    operation_id = "listDirectories",
    tag = "directories",
    params(("id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 200, description = "Directories", body = DirectoryList),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<DirectoryList>, ApiError> {
    let org = parse_id(&id, "organization")?;
    state.store.get_org(org).await?.ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))?;
    let data = state.store.list_directories(org).await?.into_iter().map(|d| out(&state, d, None)).collect();
    Ok(Json(DirectoryList { object: "list", data }))
}

/// One directory.
#[utoipa::path(
    get,
    path = "/directories/{id}",
    operation_id = "getDirectory",
    tag = "directories",
    params(("id" = Uuid, Path, description = "Directory id")),
    responses(
        (status = 200, description = "The directory", body = DirectoryOut),
        (status = 404, description = "No such directory", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<DirectoryOut>, ApiError> {
    let uuid = parse_id(&id, "directory")?;
    let dir = state
        .store
        .get_directory(uuid)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("directory {id} not found")))?;
    Ok(Json(out(&state, dir, None)))
}

/// New bearer token, shown only here; the old one stops working.
#[utoipa::path(
    post,
    path = "/directories/{id}/rotate-token",
    operation_id = "rotateDirectoryToken",
    tag = "directories",
    params(("id" = Uuid, Path, description = "Directory id")),
    responses(
        (status = 200, description = "The directory with `bearer_token`", body = DirectoryOut),
        (status = 404, description = "No such directory", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// Delete a directory; an active one records `directory.disabled`.
#[utoipa::path(
    delete,
    path = "/directories/{id}",
    operation_id = "deleteDirectory",
    tag = "directories",
    params(("id" = Uuid, Path, description = "Directory id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such directory", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let uuid = parse_id(&id, "directory")?;
    if state.store.delete_directory(uuid).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("directory {id} not found")))
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct UserParams {
    /// `list_metadata.after` of the previous page.
    #[param(format = Uuid)]
    after: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: Option<i64>,
    /// Exact, case-insensitive, any of the user's emails.
    email: Option<String>,
    /// Exact, case-insensitive.
    username: Option<String>,
    #[param(schema_with = user_state_schema)]
    state: Option<String>,
}

/// `state`: a parameter's `schema_with` replaces its description too.
fn user_state_schema() -> utoipa::openapi::schema::Object {
    let mut schema = crate::fields::schema::one_of_words(&["active", "inactive"]);
    schema.description = Some("Only `active` or only `inactive` users".into());
    schema
}

/// A page of a directory's users or groups, in id order.
#[derive(Serialize, utoipa::ToSchema)]
struct Page<T> {
    #[schema(schema_with = crate::fields::schema::object::list)]
    object: &'static str,
    data: Vec<T>,
    list_metadata: PageMeta,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DirectoryListMetadata)]
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

/// Provisioned users, normalized, with their groups.
#[utoipa::path(
    get,
    path = "/directories/{id}/users",
    operation_id = "listDirectoryUsers",
    tag = "directories",
    params(("id" = Uuid, Path, description = "Directory id"), UserParams),
    responses(
        (status = 200, description = "A page", body = Page<NormalizedUser>),
        (status = 400, description = "Bad query string", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such directory", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn users(
    State(state): State<AppState>,
    Path(id): Path<String>,
    super::ApiQuery(p): super::ApiQuery<UserParams>,
) -> Result<Json<Page<NormalizedUser>>, ApiError> {
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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct GroupParams {
    /// `list_metadata.after` of the previous page.
    #[param(format = Uuid)]
    after: Option<String>,
    /// Page size.
    #[param(minimum = 1, maximum = 500, default = 100)]
    limit: Option<i64>,
}

/// Provisioned groups, normalized.
#[utoipa::path(
    get,
    path = "/directories/{id}/groups",
    operation_id = "listDirectoryGroups",
    tag = "directories",
    params(("id" = Uuid, Path, description = "Directory id"), GroupParams),
    responses(
        (status = 200, description = "A page", body = Page<NormalizedGroup>),
        (status = 400, description = "Bad query string", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such directory", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad parameter", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn groups(
    State(state): State<AppState>,
    Path(id): Path<String>,
    super::ApiQuery(p): super::ApiQuery<GroupParams>,
) -> Result<Json<Page<NormalizedGroup>>, ApiError> {
    let directory = directory_for(&state, &id).await?;
    let (after, limit) = page_params(p.after.as_deref(), p.limit)?;
    let (data, more) = state.store.directory_groups(directory, after, limit).await?;
    let after = more.then(|| data.last().map(|g| g.id)).flatten();
    Ok(Json(Page { object: "list", data, list_metadata: PageMeta { after } }))
}
