//! `/api/v1/organizations/{id}/connections` and `/api/v1/connections/{id}`:
//! SSO connections for vendors who configure them without the portal, with
//! the SP values to give the IdP and recent sign-in attempts.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, parse_id};
use crate::http::AppState;
use crate::http::error::{ApiError, Problem};
use crate::sso::Connection;
use crate::sso::setup::{self, ConnectionRequest, build};
use crate::store::connections::Attempt;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(activate))
        .routes(routes!(deactivate))
        .routes(routes!(attempts))
}

/// An SSO connection with the values to give the IdP.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SsoConnection)]
struct ConnectionOut {
    #[schema(schema_with = crate::fields::schema::object::connection)]
    object: &'static str,
    #[serde(flatten)]
    connection: Connection,
    sp: setup::SpValues,
}

fn out(state: &AppState, connection: Connection) -> ConnectionOut {
    ConnectionOut { object: "connection", sp: setup::sp_values(&state.settings.public_url, &connection), connection }
}

/// Create an SSO connection (`draft` until activated).
///
/// SAML details come as metadata XML, a metadata URL (fetched now) or the
/// three values by hand; OIDC as issuer, client ID and secret (discovery is
/// tried now, the secret sealed at once).
#[utoipa::path(
    post,
    path = "/organizations/{id}/connections",
    operation_id = "createConnection",
    tag = "connections",
    params(("id" = Uuid, Path, description = "Organization id")),
    request_body = ConnectionRequest,
    responses(
        (status = 201, description = "Created", body = ConnectionOut),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or metadata or discovery that could not be used", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn create(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConnectionRequest>,
) -> Result<(StatusCode, Json<ConnectionOut>), ApiError> {
    let org = parse_id(&id, "organization")?;
    state.store.get_org(org).await?.ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))?;
    let input = build(body, &state.cipher, &state.oidc, &state.egress, None).await.map_err(ApiError::Validation)?;
    let created = state
        .store
        .create_connection(org, &input)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))?;
    tracing::info!(connection_id = %created.id, org_id = %org, "connection created");
    Ok((StatusCode::CREATED, Json(out(&state, created))))
}

/// An organization's connections.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SsoConnectionList)]
struct ConnectionList {
    #[schema(schema_with = crate::fields::schema::object::list)]
    object: &'static str,
    data: Vec<ConnectionOut>,
}

/// The organization's SSO connections (never their secrets).
#[utoipa::path(
    get,
    path = "/organizations/{id}/connections",
    operation_id = "listConnections",
    tag = "connections",
    params(("id" = Uuid, Path, description = "Organization id")),
    responses(
        (status = 200, description = "Connections", body = ConnectionList),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn list(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ConnectionList>, ApiError> {
    let org = parse_id(&id, "organization")?;
    state.store.get_org(org).await?.ok_or_else(|| ApiError::NotFound(format!("organization {id} not found")))?;
    let data = state.store.list_connections(org).await?.into_iter().map(|c| out(&state, c)).collect();
    Ok(Json(ConnectionList { object: "list", data }))
}

async fn existing(state: &AppState, id: &str) -> Result<crate::sso::ConnectionWithSecret, ApiError> {
    let uuid = parse_id(id, "connection")?;
    state.store.get_connection(uuid).await?.ok_or_else(|| ApiError::NotFound(format!("connection {id} not found")))
}

/// One connection (never its secret).
#[utoipa::path(
    get,
    path = "/connections/{id}",
    operation_id = "getConnection",
    tag = "connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The connection", body = ConnectionOut),
        (status = 404, description = "No such connection", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ConnectionOut>, ApiError> {
    Ok(Json(out(&state, existing(&state, &id).await?.connection)))
}

/// Replace a connection's settings; an omitted `oidc.client_secret` keeps the stored one.
#[utoipa::path(
    put,
    path = "/connections/{id}",
    operation_id = "updateConnection",
    tag = "connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    request_body = ConnectionRequest,
    responses(
        (status = 200, description = "The connection after the change", body = ConnectionOut),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such connection", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or metadata or discovery that could not be used", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ConnectionRequest>,
) -> Result<Json<ConnectionOut>, ApiError> {
    let current = existing(&state, &id).await?;
    let stored = crate::sso::setup::StoredOidc::of(&current);
    let input = build(body, &state.cipher, &state.oidc, &state.egress, stored).await.map_err(ApiError::Validation)?;
    let updated = state
        .store
        .update_connection(current.connection.id, &input)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("connection {id} not found")))?;
    Ok(Json(out(&state, updated)))
}

async fn set_active(state: &AppState, id: &str, active: bool) -> Result<Json<ConnectionOut>, ApiError> {
    let current = existing(state, id).await?;
    if active && !current.connection.configured() {
        return Err(ApiError::BadRequest("configure the identity provider details before activating".into()));
    }
    let updated = state
        .store
        .set_connection_active(current.connection.id, active)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("connection {id} not found")))?;
    Ok(Json(out(state, updated)))
}

/// Activate a connection: sign-ins through it start working.
#[utoipa::path(
    post,
    path = "/connections/{id}/activate",
    operation_id = "activateConnection",
    tag = "connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The active connection", body = ConnectionOut),
        (status = 400, description = "The IdP details are not complete yet", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such connection", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn activate(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ConnectionOut>, ApiError> {
    set_active(&state, &id, true).await
}

/// Deactivate a connection: sign-ins through it stop.
#[utoipa::path(
    post,
    path = "/connections/{id}/deactivate",
    operation_id = "deactivateConnection",
    tag = "connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The inactive connection", body = ConnectionOut),
        (status = 404, description = "No such connection", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn deactivate(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ConnectionOut>, ApiError> {
    set_active(&state, &id, false).await
}

/// Delete a connection.
#[utoipa::path(
    delete,
    path = "/connections/{id}",
    operation_id = "deleteConnection",
    tag = "connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such connection", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let uuid = parse_id(&id, "connection")?;
    if state.store.delete_connection(uuid).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("connection {id} not found")))
    }
}

/// A connection's recent sign-in attempts.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = SignInAttemptList)]
struct AttemptList {
    #[schema(schema_with = crate::fields::schema::object::list)]
    object: &'static str,
    data: Vec<Attempt>,
}

/// The connection's 50 most recent sign-in attempts, newest first.
#[utoipa::path(
    get,
    path = "/connections/{id}/attempts",
    operation_id = "listConnectionAttempts",
    tag = "connections",
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, description = "Attempts", body = AttemptList),
        (status = 404, description = "No such connection", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn attempts(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<AttemptList>, ApiError> {
    let current = existing(&state, &id).await?;
    let data = state.store.connection_attempts(current.connection.id, 50).await?;
    Ok(Json(AttemptList { object: "list", data }))
}
