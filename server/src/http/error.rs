//! The one place API errors become HTTP responses: RFC 9457 problem details
//! (`application/problem+json`). Client mistakes get a 4xx with a precise
//! `detail`; internal failures get a bare 500/503 while the full cause chain is
//! logged.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

pub use crate::fields::FieldError;

/// Every way an API request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("request validation failed")]
    Validation(Vec<FieldError>),
    #[error("too many requests; retry in {} s", crate::http::limits::retry_after_secs(*.0))]
    TooManyRequests(std::time::Duration),
    #[error("{0}")]
    BadGateway(String),
    #[error("service unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// A single invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Validation(vec![FieldError { field: field.into(), message: message.into() }])
    }

    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "Bad request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed")
            }
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Payload too large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type")
            }
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation", "Validation failed"),
            ApiError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too-many-requests", "Too many requests"),
            ApiError::BadGateway(_) => (StatusCode::BAD_GATEWAY, "bad-gateway", "Bad gateway"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal server error"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(conflict) => ApiError::Conflict(conflict.to_string()),
            StoreError::Other(e) => ApiError::Internal(e),
        }
    }
}

/// An RFC 9457 problem details body (`application/problem+json`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// `urn:portico:problem:<slug>`, e.g. `urn:portico:problem:validation`.
    #[serde(rename = "type")]
    #[schema(example = "urn:portico:problem:not-found")]
    kind: String,
    #[schema(value_type = String, example = "Not found")]
    title: &'a str,
    /// The HTTP status code.
    #[schema(example = 404)]
    status: u16,
    /// What went wrong, in words; absent on 500 and 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// Each invalid field (422 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<FieldError>>)]
    errors: Option<&'a [FieldError]>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let detail = match &self {
            ApiError::Internal(cause) | ApiError::Unavailable(cause) => {
                // Full chain to the log, nothing internal to the client.
                tracing::error!(error = format!("{cause:#}"), "request failed");
                None
            }
            ApiError::Validation(errors) => {
                Some(errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))
            }
            other => Some(other.to_string()),
        };
        let errors = match &self {
            ApiError::Validation(errors) => Some(errors.as_slice()),
            _ => None,
        };
        let body =
            Problem { kind: format!("urn:portico:problem:{slug}"), title, status: status.as_u16(), detail, errors };
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        match &self {
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"portico\""));
            }
            ApiError::TooManyRequests(wait) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(crate::http::limits::retry_after_secs(*wait)));
            }
            _ => {}
        }
        response
    }
}

pub use crate::fields::json_has_nul;
