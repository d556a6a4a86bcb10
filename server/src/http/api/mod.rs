//! Vendor REST API v1: bearer API-key auth, JSON in and out, problem details
//! for every error. See `docs/api.md` and `/api/v1/openapi.json`.

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use crate::http::AppState;
use crate::http::error::ApiError;

pub mod connections;
mod directories;
mod domains;
pub mod events;
mod orgs;
mod portal;
mod webhooks;

/// Largest accepted API request body.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// The `/api/v1` router; everything but the OpenAPI document needs a key.
pub fn router(state: AppState) -> Router<AppState> {
    let protected = Router::new()
        .merge(orgs::routes())
        .merge(domains::routes())
        .merge(directories::routes())
        .merge(connections::routes())
        .merge(portal::routes())
        .merge(webhooks::routes())
        .merge(events::routes())
        .route_layer(middleware::from_fn_with_state(state, require_api_key));
    Router::new()
        .route("/openapi.json", get(openapi))
        .merge(protected)
        .fallback(|| async { ApiError::NotFound("no such API endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("method not allowed on this endpoint".into())
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// The OpenAPI 3.1 description of this API.
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("openapi.json"))
}

/// Id of the API key that authenticated the request.
#[derive(Debug, Clone, Copy)]
pub struct ApiKeyId(#[allow(dead_code)] pub uuid::Uuid);

/// `routes` behind the API key (for API-key routes outside `/api/v1`).
pub fn with_api_key(routes: Router<AppState>, state: AppState) -> Router<AppState> {
    routes.route_layer(middleware::from_fn_with_state(state, require_api_key))
}

async fn require_api_key(State(state): State<AppState>, mut req: Request, next: Next) -> Result<Response, ApiError> {
    let presented = bearer_token(req.headers());
    let source = crate::http::limits::ClientAddr::of(req.extensions()).key();
    let attempt = state.limits.auth.begin(source, presented.as_ref()).map_err(ApiError::TooManyRequests)?;
    let key_id = match &presented {
        Some(token) => state.store.authenticate_api_key(token).await?,
        None => None,
    };
    let Some(key_id) = key_id else {
        attempt.failed();
        return Err(ApiError::Unauthorized);
    };
    attempt.succeeded();
    tracing::Span::current().record("api_key_id", tracing::field::display(key_id));
    req.extensions_mut().insert(ApiKeyId(key_id));
    Ok(next.run(req).await)
}

/// The `Authorization: Bearer …` token, if any.
pub(crate) fn bearer_token(headers: &axum::http::HeaderMap) -> Option<SecretString> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(|t| SecretString::from(t.trim().to_owned()))
}

/// A path id; one that is not a UUID names nothing, so it is a 404.
pub(crate) fn parse_id(raw: &str, what: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::try_parse(raw).map_err(|_| ApiError::NotFound(format!("{what} {raw:?} not found")))
}

/// `Json` whose rejections are problem details: malformed JSON is 400, a
/// body that does not fit the schema is 422, a wrong content type 415, and an
/// oversized body 413.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType("expected Content-Type: application/json".into()));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(format!("request body is larger than {MAX_BODY_BYTES} bytes"))
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })?;
        let value = axum::Json::<T>::from_bytes(&bytes).map_err(json_rejection)?;
        // Checked after parsing, so malformed JSON is reported as such.
        if crate::http::error::json_has_nul(&bytes) {
            return Err(ApiError::Validation(vec![crate::http::error::FieldError {
                field: "body".into(),
                message: "text must not contain NUL characters (\\u0000)".into(),
            }]));
        }
        Ok(ApiJson(value.0))
    }
}

/// `application/json` or any `application/*+json`, parameters ignored.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::Validation(vec![crate::http::error::FieldError {
            field: "body".into(),
            message: e
                .body_text()
                .trim_start_matches("Failed to deserialize the JSON body into the target type: ")
                .to_owned(),
        }]),
        JsonRejection::JsonSyntaxError(e) => ApiError::BadRequest(format!("malformed JSON: {}", e.body_text())),
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// `Query` whose rejections are 400 problem details.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // A decoded NUL could not be compared with stored text on PostgreSQL.
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError::BadRequest("query parameters must not contain NUL characters (%00)".into()));
        }
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => {
                Err(ApiError::BadRequest(format!("invalid query string: {}", e.body_text())))
            }
            Err(other) => Err(ApiError::BadRequest(other.body_text())),
        }
    }
}
