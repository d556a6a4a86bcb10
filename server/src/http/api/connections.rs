//! `/api/v1/organizations/{id}/connections` and `/api/v1/connections/{id}`:
//! SSO connections for vendors who configure them without the portal, with
//! the SP values to give the IdP and recent sign-in attempts.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::{ApiJson, parse_id};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::sso::Connection;
use crate::sso::setup::{self, ConnectionRequest, build};
use crate::store::connections::Attempt;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/organizations/{id}/connections", get(list).post(create))
        .route("/connections/{id}", get(show).put(update).delete(remove))
        .route("/connections/{id}/activate", post(activate))
        .route("/connections/{id}/deactivate", post(deactivate))
        .route("/connections/{id}/attempts", get(attempts))
}

#[derive(Serialize)]
struct ConnectionOut {
    object: &'static str,
    #[serde(flatten)]
    connection: Connection,
    sp: setup::SpValues,
}

fn out(state: &AppState, connection: Connection) -> ConnectionOut {
    ConnectionOut { object: "connection", sp: setup::sp_values(&state.settings.public_url, &connection), connection }
}

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

#[derive(Serialize)]
struct ConnectionList {
    object: &'static str,
    data: Vec<ConnectionOut>,
}

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

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ConnectionOut>, ApiError> {
    Ok(Json(out(&state, existing(&state, &id).await?.connection)))
}

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

async fn activate(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ConnectionOut>, ApiError> {
    set_active(&state, &id, true).await
}

async fn deactivate(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ConnectionOut>, ApiError> {
    set_active(&state, &id, false).await
}

async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let uuid = parse_id(&id, "connection")?;
    if state.store.delete_connection(uuid).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("connection {id} not found")))
    }
}

#[derive(Serialize)]
struct AttemptList {
    object: &'static str,
    data: Vec<Attempt>,
}

async fn attempts(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<AttemptList>, ApiError> {
    let current = existing(&state, &id).await?;
    let data = state.store.connection_attempts(current.connection.id, 50).await?;
    Ok(Json(AttemptList { object: "list", data }))
}
