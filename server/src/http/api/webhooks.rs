//! `/api/v1/webhooks`: endpoints, secrets, deliveries and replays.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiJson, ApiQuery, parse_id};
use crate::events::signing::generate_secret;
use crate::events::webhooks::{Endpoint, EndpointUpdate, EventPattern};
use crate::events::{uuid_ceil, uuid_floor};
use crate::http::AppState;
use crate::http::error::{ApiError, FieldError, Problem};
use crate::store::deliveries::{DeliveryInfo, ReplayScope};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(rotate))
        .routes(routes!(deliveries))
        .routes(routes!(replay))
}

/// A new webhook endpoint.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookEndpointRequest)]
struct CreateBody {
    /// Absolute http(s) URL of at most 2048 characters.
    #[schema(format = "uri", max_length = 2048)]
    url: String,
    #[serde(default)]
    #[schema(max_length = 500)]
    description: Option<String>,
    /// Event types or patterns (`sso.*`, or `*` for every event); at least
    /// one.
    #[schema(min_items = 1, example = json!(["sso.*", "directory.user.created"]))]
    event_types: Vec<String>,
    #[serde(default = "yes")]
    #[schema(default = true)]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// Changes to a webhook endpoint; absent fields stay unchanged.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = WebhookEndpointUpdate)]
struct UpdateBody {
    #[serde(default)]
    #[schema(format = "uri", max_length = 2048)]
    url: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 500)]
    description: Option<Option<String>>,
    #[serde(default)]
    #[schema(min_items = 1)]
    event_types: Option<Vec<String>>,
    /// Re-enabling clears `disabled_reason`.
    #[serde(default)]
    enabled: Option<bool>,
}

fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// An endpoint together with its signing secret: only on create and rotate.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookEndpointWithSecret)]
struct WithSecret {
    #[serde(flatten)]
    endpoint: Endpoint,
    /// Signs each delivery (Standard Webhooks); shown only here.
    #[schema(example = "whsec_…")]
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

/// Register an endpoint; the response carries its signing secret, shown only here.
#[utoipa::path(
    post,
    path = "/webhooks",
    operation_id = "createWebhookEndpoint",
    tag = "webhooks",
    request_body = CreateBody,
    responses(
        (status = 201, description = "Created, with `secret`", body = WithSecret),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid URL or event type pattern", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// Every webhook endpoint.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookEndpointList)]
struct EndpointList {
    #[schema(schema_with = crate::fields::schema::object::list)]
    object: &'static str,
    data: Vec<Endpoint>,
}

/// List webhook endpoints (never their secrets).
#[utoipa::path(
    get,
    path = "/webhooks",
    operation_id = "listWebhookEndpoints",
    tag = "webhooks",
    responses((status = 200, description = "All endpoints", body = EndpointList)),
)]
async fn list(State(state): State<AppState>) -> Result<Json<EndpointList>, ApiError> {
    Ok(Json(EndpointList { object: "list", data: state.store.list_endpoints().await? }))
}

/// One endpoint.
#[utoipa::path(
    get,
    path = "/webhooks/{id}",
    operation_id = "getWebhookEndpoint",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = Endpoint),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Endpoint>, ApiError> {
    state.store.get_endpoint(parse_id(&id, "webhook endpoint")?).await?.map(Json).ok_or_else(|| not_found(&id))
}

/// Change url, description, event_types or enabled; re-enabling clears `disabled_reason`.
#[utoipa::path(
    patch,
    path = "/webhooks/{id}",
    operation_id = "updateWebhookEndpoint",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook endpoint id")),
    request_body = UpdateBody,
    responses(
        (status = 200, description = "The endpoint after the change", body = Endpoint),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// Delete the endpoint and its pending deliveries.
#[utoipa::path(
    delete,
    path = "/webhooks/{id}",
    operation_id = "deleteWebhookEndpoint",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook endpoint id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
)]
async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if state.store.delete_endpoint(parse_id(&id, "webhook endpoint")?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&id))
    }
}

/// Replace the signing secret; the new one is shown only here.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/rotate-secret",
    operation_id = "rotateWebhookSecret",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook endpoint id")),
    responses(
        (status = 200, description = "The endpoint with its new `secret`", body = WithSecret),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    #[param(schema_with = delivery_status_schema)]
    status: Option<String>,
    /// At most this many (clamped to 1–500).
    #[param(minimum = 1, maximum = 500, default = 50)]
    limit: Option<u32>,
}

/// `status`: a parameter's `schema_with` replaces its description too.
fn delivery_status_schema() -> utoipa::openapi::schema::Object {
    let mut schema = crate::events::DeliveryStatus::schema();
    schema.description = Some("Only deliveries in this state".into());
    schema
}

/// An endpoint's deliveries.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = WebhookDeliveryList)]
struct DeliveryList {
    #[schema(schema_with = crate::fields::schema::object::list)]
    object: &'static str,
    data: Vec<DeliveryInfo>,
}

/// Delivery state per event for this endpoint, newest first.
#[utoipa::path(
    get,
    path = "/webhooks/{id}/deliveries",
    operation_id = "listWebhookDeliveries",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook endpoint id"), DeliveryParams),
    responses(
        (status = 200, description = "Deliveries", body = DeliveryList),
        (status = 400, description = "Bad query string", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown status", body = Problem, content_type = "application/problem+json"),
    ),
)]
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

/// The time range of events to replay (inclusive).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReplayRange)]
struct ReplayBody {
    #[serde(with = "time::serde::rfc3339")]
    from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    to: OffsetDateTime,
}

/// How many deliveries a replay queued.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Replay)]
pub(super) struct Replayed {
    #[schema(schema_with = crate::fields::schema::object::replay)]
    pub object: &'static str,
    pub queued: u64,
}

/// Queue every subscribed event in a time range again for this endpoint.
#[utoipa::path(
    post,
    path = "/webhooks/{id}/replay",
    operation_id = "replayWebhookRange",
    tag = "webhooks",
    params(("id" = Uuid, Path, description = "Webhook endpoint id")),
    request_body = ReplayBody,
    responses(
        (status = 202, description = "Queued", body = Replayed),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The endpoint is disabled", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body larger than 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`from` after `to`, or not RFC 3339 times", body = Problem, content_type = "application/problem+json"),
    ),
)]
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
