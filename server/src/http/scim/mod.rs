//! SCIM 2.0 service provider under `/scim/v2/{directory}` (RFC 7643/7644):
//! bearer-token authentication per directory (a token only opens its own
//! directory), activation on the first authenticated request, the request
//! log, RFC 7644 §3.12 errors, discovery, `/Users`, `/Groups` and
//! `/.search`. The resources' logic is `crate::scim`, their SQL
//! `store/scim_*.rs`.

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use uuid::Uuid;

use crate::http::AppState;
use crate::scim::requests;
pub use crate::scim::{MAX_BODY_BYTES, SCIM_CONTENT_TYPE};
use crate::scim::{ScimErrorKind, ScimFault};

pub mod discovery;
pub mod groups;
pub mod search;
pub mod users;

/// An RFC 7644 §3.12 error response.
#[derive(Debug)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

impl ScimError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, scim_type: None, detail: detail.into() }
    }

    /// Too many failed authentications from this client: 429 with
    /// `Retry-After` (RFC 7644 §3.12 lists 429 for rate limiting).
    pub fn too_many(wait: std::time::Duration) -> Response {
        let secs = crate::http::limits::retry_after_secs(wait);
        let error =
            Self::new(StatusCode::TOO_MANY_REQUESTS, format!("too many failed authentications; retry in {secs} s"));
        let mut response = error.into_response();
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        response
    }

    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "missing or invalid bearer token for this directory")
    }
}

impl IntoResponse for ScimError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = self.scim_type {
            body["scimType"] = json!(t);
        }
        let mut response = (self.status, scim_json(body)).into_response();
        response.extensions_mut().insert(requests::LoggedDetail(self.detail));
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"SCIM\""));
        }

        response
    }
}

/// Where a refusal becomes HTTP: each kind's status and `scimType`.
impl From<ScimFault> for ScimError {
    fn from(e: ScimFault) -> Self {
        let status = match e.kind {
            ScimErrorKind::InvalidSyntax
            | ScimErrorKind::InvalidValue
            | ScimErrorKind::InvalidFilter
            | ScimErrorKind::InvalidPath
            | ScimErrorKind::NoTarget => StatusCode::BAD_REQUEST,
            ScimErrorKind::Uniqueness => StatusCode::CONFLICT,
            ScimErrorKind::NotFound => StatusCode::NOT_FOUND,
            ScimErrorKind::VersionMismatch => StatusCode::PRECONDITION_FAILED,
        };
        Self { status, scim_type: e.kind.scim_type(), detail: e.detail }
    }
}

impl From<crate::store::StoreError> for ScimError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = format!("{e:#}"), "SCIM request failed");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error; retry later")
    }
}

/// A request body; a too-large or unreadable body is a SCIM error.
pub struct ScimBody(pub axum::body::Bytes);

impl<S: Send + Sync> axum::extract::FromRequest<S> for ScimBody {
    type Rejection = ScimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::body::Bytes::from_request(req, state).await.map(ScimBody).map_err(|e| {
            let status = e.status();
            let detail = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!("the request body is larger than {MAX_BODY_BYTES} bytes")
            } else {
                e.body_text()
            };
            ScimError::new(status, detail)
        })
    }
}

/// A JSON body with the SCIM media type.
pub fn scim_json(body: serde_json::Value) -> Response {
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
    response
}

/// Routes under `/scim/v2/{directory}`.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/{directory}/ServiceProviderConfig", get(service_provider_config))
        .route("/{directory}/Schemas", get(discovery::schemas))
        .route("/{directory}/Schemas/{id}", get(discovery::schema_by_id))
        .route("/{directory}/ResourceTypes", get(discovery::resource_types))
        .route("/{directory}/ResourceTypes/{id}", get(discovery::resource_type_by_id))
        .route("/{directory}/.search", axum::routing::post(search::root))
        .route("/{directory}/Users/.search", axum::routing::post(search::users))
        .route("/{directory}/Groups/.search", axum::routing::post(search::groups))
        .route("/{directory}/Users", get(users::list).post(users::create))
        .route(
            "/{directory}/Users/{id}",
            get(users::get_one).put(users::replace).patch(users::patch).delete(users::delete),
        )
        .route("/{directory}/Groups", get(groups::list).post(groups::create))
        .route(
            "/{directory}/Groups/{id}",
            get(groups::get_one).put(groups::replace).patch(groups::patch).delete(groups::delete),
        )
        // Unknown paths inside a directory need its token too: a stranger
        // learns nothing about which routes exist.
        .route("/{directory}/{*rest}", axum::routing::any(not_found))
        .route_layer(middleware::from_fn_with_state(state, authenticate))
        .fallback(not_found)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

async fn not_found() -> ScimError {
    ScimError::new(StatusCode::NOT_FOUND, "no such SCIM endpoint")
}

/// Every SCIM route needs the directory's own bearer token. Every request
/// naming a directory, authenticated or not, goes to its request log.
async fn authenticate(
    State(state): State<AppState>,
    Path(params): Path<std::collections::HashMap<String, String>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(directory) = params.get("directory").and_then(|d| Uuid::try_parse(d).ok()) else {
        return ScimError::unauthorized().into_response();
    };
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let path = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    // Relative to the directory's base URL: what the IdP admin configured.
    let prefix = format!("/{directory}");
    let path = path.strip_prefix(&prefix).map(str::to_owned).unwrap_or(path);
    let response = match authorize(&state, directory, request, next).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    };
    let detail = response.extensions().get::<requests::LoggedDetail>().map(|d| d.0.as_str());
    state.scim_log.record(
        requests::ScimRequest::new(directory, method.as_str(), &path, response.status().as_u16(), started.elapsed())
            .with_detail(detail),
    );
    response
}

async fn authorize(state: &AppState, directory: Uuid, request: Request, next: Next) -> Result<Response, ScimError> {
    let token = crate::http::api::bearer_token(request.headers());
    // Per address and directory: an IdP's shared egress address with one
    // tenant's wrong token must not block the other tenants.
    let address = crate::http::limits::ClientAddr::of(request.extensions()).key();
    let attempt = match state.limits.auth.begin(format!("{address} {directory}"), token.as_ref()) {
        Ok(attempt) => attempt,
        Err(wait) => return Ok(ScimError::too_many(wait)),
    };
    let principal = match &token {
        Some(token) => state.store.authenticate_scim(directory, token).await?,
        None => None,
    };
    let Some(principal) = principal else {
        attempt.failed();
        return Err(ScimError::unauthorized());
    };
    attempt.succeeded();
    let mut request = request;
    request.extensions_mut().insert(principal);
    Ok(next.run(request).await)
}

/// RFC 7643 §5. Lists only what this server does today.
async fn service_provider_config(State(state): State<AppState>, Path(directory): Path<String>) -> Response {
    let location =
        format!("{}/scim/v2/{directory}/ServiceProviderConfig", state.settings.public_url.trim_end_matches('/'));
    scim_json(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": MAX_BODY_BYTES },
        "filter": { "supported": true, "maxResults": 1000 },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": true },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "The directory's bearer token, shown once when the directory is created or its token rotated",
            "primary": true
        }],
        "meta": { "resourceType": "ServiceProviderConfig", "location": location }
    }))
}
