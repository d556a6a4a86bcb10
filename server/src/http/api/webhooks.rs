//! `/api/v1/webhooks`: endpoints, secrets, deliveries and replays.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{ApiJson, ApiQuery, parse_id};
use crate::events::signing::generate_secret;
use crate::events::webhooks::{Endpoint, EndpointUpdate, EventPattern};
use crate::events::{uuid_ceil, uuid_floor};
use crate::http::AppState;
use crate::http::error::{ApiError, FieldError};
use crate::store::deliveries::{DeliveryInfo, ReplayScope};

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{id}", get(show).patch(update).delete(remove))
        .route("/webhooks/{id}/rotate-secret", post(rotate))
        .route("/webhooks/{id}/deliveries", get(deliveries))
        .route("/webhooks/{id}/replay", post(replay))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    url: String,
    #[serde(default)]
    description: Option<String>,
    event_types: Vec<String>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    url: Option<String>,
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    enabled: Option<bool>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An endpoint together with its secret: only on create and rotate.
#[derive(Serialize)]
struct WithSecret {
    #[serde(flatten)]
    endpoint: Endpoint,
    secret: String,
}

fn check_url(url: &str, errors: &mut Vec<FieldError>) {
    let ok = (url.starts_with("https://") || url.starts_with("http://"))
        && url.len() <= 2048
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if !ok {
        errors.push(FieldError { field: "url".into(), message: "must be an absolute http(s) URL".into() });
    }
}

fn parse_patterns(raw: &[String], errors: &mut Vec<FieldError>) -> Vec<EventPattern> {
    if raw.is_empty() {
        errors
            .push(FieldError { field: "event_types".into(), message: "list at least one event type, or \"*\"".into() });
    }
    raw.iter()
        .enumerate()
        .filter_map(|(i, p)| {
            EventPattern::parse(p)
                .map_err(|m| errors.push(FieldError { field: format!("event_types[{i}]"), message: m }))
                .ok()
        })
        .collect()
}

fn check_description(d: Option<&str>, errors: &mut Vec<FieldError>) {
    if d.is_some_and(|d| d.chars().count() > 500) {
        errors.push(FieldError { field: "description".into(), message: "at most 500 characters".into() });
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("webhook endpoint {id} not found"))
}

async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<WithSecret>), ApiError> {
    let mut errors = Vec::new();
    check_url(&body.url, &mut errors);
    check_description(body.description.as_deref(), &mut errors);
    let patterns = parse_patterns(&body.event_types, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let secret = generate_secret();
    let sealed = state.cipher.seal(secret.expose_secret());
    let endpoint =
        state.store.create_endpoint(&body.url, body.description.as_deref(), &patterns, body.enabled, &sealed).await?;
    tracing::info!(endpoint_id = %endpoint.id, "webhook endpoint created");
    Ok((StatusCode::CREATED, Json(WithSecret { endpoint, secret: secret.expose_secret().to_owned() })))
}

#[derive(Serialize)]
struct EndpointList {
    object: &'static str,
    data: Vec<Endpoint>,
}

async fn list(State(state): State<AppState>) -> Result<Json<EndpointList>, ApiError> {
    Ok(Json(EndpointList { object: "list", data: state.store.list_endpoints().await? }))
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Endpoint>, ApiError> {
    state.store.get_endpoint(parse_id(&id, "webhook endpoint")?).await?.map(Json).ok_or_else(|| not_found(&id))
}

async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> Result<Json<Endpoint>, ApiError> {
    let uuid = parse_id(&id, "webhook endpoint")?;
    let mut errors = Vec::new();
    if let Some(url) = &body.url {
        check_url(url, &mut errors);
    }
    if let Some(d) = &body.description {
        check_description(d.as_deref(), &mut errors);
    }
    let event_types = body.event_types.as_ref().map(|raw| parse_patterns(raw, &mut errors));
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let update = EndpointUpdate { url: body.url, description: body.description, event_types, enabled: body.enabled };
    state.store.update_endpoint(uuid, update).await?.map(Json).ok_or_else(|| not_found(&id))
}

async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if state.store.delete_endpoint(parse_id(&id, "webhook endpoint")?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

async fn rotate(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<WithSecret>, ApiError> {
    let uuid = parse_id(&id, "webhook endpoint")?;
    let secret = generate_secret();
    if !state.store.set_endpoint_secret(uuid, &state.cipher.seal(secret.expose_secret())).await? {
        return Err(not_found(&id));
    }
    let endpoint = state.store.get_endpoint(uuid).await?.ok_or_else(|| not_found(&id))?;
    tracing::info!(endpoint_id = %uuid, "webhook secret rotated");
    Ok(Json(WithSecret { endpoint, secret: secret.expose_secret().to_owned() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeliveryParams {
    status: Option<String>,
    limit: Option<u32>,
}

#[derive(Serialize)]
struct DeliveryList {
    object: &'static str,
    data: Vec<DeliveryInfo>,
}

async fn deliveries(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> Result<Json<DeliveryList>, ApiError> {
    let uuid = parse_id(&id, "webhook endpoint")?;
    state.store.get_endpoint(uuid).await?.ok_or_else(|| not_found(&id))?;
    let status = match params.status.as_deref() {
        None => None,
        Some(s) => Some(
            crate::events::DeliveryStatus::parse(s)
                .ok_or_else(|| ApiError::invalid("status", "one of pending, delivering, succeeded, failed"))?,
        ),
    };
    let limit = params.limit.unwrap_or(50).clamp(1, 500);
    Ok(Json(DeliveryList { object: "list", data: state.store.list_deliveries(uuid, status, limit).await? }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplayBody {
    #[serde(with = "time::serde::rfc3339")]
    from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    to: OffsetDateTime,
}

#[derive(Serialize)]
pub(super) struct Replayed {
    pub object: &'static str,
    pub queued: u64,
}

async fn replay(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<(StatusCode, Json<Replayed>), ApiError> {
    let uuid = parse_id(&id, "webhook endpoint")?;
    let endpoint = state.store.get_endpoint(uuid).await?.ok_or_else(|| not_found(&id))?;
    if body.from > body.to {
        return Err(ApiError::invalid("from", "must not be after `to`"));
    }
    if !endpoint.enabled {
        return Err(ApiError::Conflict("the endpoint is disabled; enable it before replaying".into()));
    }
    let scope = ReplayScope::Range { from: uuid_floor(body.from), to: uuid_ceil(body.to) };
    let queued = state.store.replay(scope, Some(uuid)).await?;
    Ok((StatusCode::ACCEPTED, Json(Replayed { object: "replay", queued })))
}
