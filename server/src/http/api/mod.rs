//! Vendor REST API v1: bearer API-key auth, JSON in and out, problem details
//! for every error. See `docs/api.md` and `/api/v1/openapi.json`, which is
//! generated from the `#[utoipa::path]` of each handler: the routes and the
//! document come from one list (`api`).

use std::convert::Infallible;
use std::sync::LazyLock;

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::Route;
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use tower::{Layer, Service};
use utoipa::OpenApi as _;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{self, RefOr};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::AppState;
use crate::http::error::{ApiError, Problem};

pub mod connections;
mod directories;
mod domains;
pub mod events;
mod orgs;
mod portal;
mod webhooks;

/// Largest accepted API request body.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Name of the API-key security scheme in the document.
const API_KEY: &str = "apiKey";

/// The `/api/v1` router; everything but the OpenAPI document needs a key.
pub fn router(state: AppState) -> Router<AppState> {
    serve(api(middleware::from_fn_with_state(state, require_api_key)))
}

/// What the router adds around the routes: problem-detail fallbacks and the
/// body limit (no routes: those all come from `api`).
fn serve(api: OpenApiRouter<AppState>) -> Router<AppState> {
    let (routes, _) = api.split_for_parts();
    routes
        .fallback(|| async { ApiError::NotFound("no such API endpoint".into()) })
        .method_not_allowed_fallback(|| async {
            ApiError::MethodNotAllowed("method not allowed on this endpoint".into())
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
}

/// Every `/api/v1` route with its OpenAPI operation, from one list: `routes!`
/// registers each handler at the path and methods of its `#[utoipa::path]`
/// and adds that operation to the document. `protect` wraps the routes that
/// need an API key (the document says so on exactly those operations).
fn api<L>(protect: L) -> OpenApiRouter<AppState>
where
    L: Layer<Route> + Clone + Send + Sync + 'static,
    L::Service: Service<Request> + Clone + Send + Sync + 'static,
    <L::Service as Service<Request>>::Response: IntoResponse + 'static,
    <L::Service as Service<Request>>::Error: Into<Infallible> + 'static,
    <L::Service as Service<Request>>::Future: Send + 'static,
{
    let mut protected = OpenApiRouter::new()
        .merge(orgs::routes())
        .merge(domains::routes())
        .merge(directories::routes())
        .merge(connections::routes())
        .merge(portal::routes())
        .merge(webhooks::routes())
        .merge(events::routes());
    require_api_key_in_document(protected.get_openapi_mut());
    OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(openapi)).merge(protected.route_layer(protect))
}

/// Marks every operation of `doc` as needing the API key, with the two
/// answers `require_api_key` gives before the handler runs.
fn require_api_key_in_document(doc: &mut openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.options,
            &mut item.head,
            &mut item.patch,
            &mut item.trace,
        ];
        for operation in operations.into_iter().flatten() {
            operation.security = Some(vec![SecurityRequirement::new(API_KEY, Vec::<String>::new())]);
            let responses = &mut operation.responses.responses;
            for (status, description) in [
                ("401", "Missing or invalid API key"),
                ("429", "Too many failed authentications from this address; see Retry-After"),
            ] {
                responses.entry(status.into()).or_insert_with(|| RefOr::T(problem_response(description)));
            }
        }
    }
}

/// A problem-details response (`application/problem+json`).
fn problem_response(description: &str) -> openapi::Response {
    openapi::ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            openapi::ContentBuilder::new().schema(Some(openapi::Ref::from_schema_name("Problem"))).build(),
        )
        .build()
}

/// The document's header: what the API is, where it lives, how to
/// authenticate, and the tags that group its operations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Portico vendor API",
        version = "1",
        description = "REST API for the SaaS vendor running Portico. Authenticate with \
                       `Authorization: Bearer psk_…` (create keys with `portico api-key create`). \
                       Errors are RFC 9457 problem details (`application/problem+json`); \
                       validation errors (422) list each invalid field in `errors`."
    ),
    servers((url = "/api/v1")),
    components(schemas(Problem)),
    modifiers(&ApiKeyScheme),
    tags(
        (name = "organizations", description = "The vendor's customers: each owns its domains, directories, connections and portal links."),
        (name = "domains", description = "Email domains of an organization, verified by a DNS TXT record; a verified domain routes SSO."),
        (name = "directories", description = "SCIM directories an organization's IdP provisions users and groups into."),
        (name = "connections", description = "SAML and OIDC single sign-on connections, with the values to give the IdP."),
        (name = "portal", description = "Single-use links to the admin portal where an organization's IT admin sets things up."),
        (name = "webhooks", description = "Endpoints that receive signed events, their deliveries and replays."),
        (name = "events", description = "The event log: catch-up with a cursor, a live stream, replays."),
        (name = "meta", description = "This document."),
    )
)]
struct ApiDoc;

/// The bearer API-key scheme (`components.securitySchemes.apiKey`).
struct ApiKeyScheme;

impl utoipa::Modify for ApiKeyScheme {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some("API key `psk_…`")).build();
        doc.components.get_or_insert_with(Default::default).add_security_scheme(API_KEY, SecurityScheme::Http(scheme));
    }
}

/// The OpenAPI document, serialized once.
static DOCUMENT: LazyLock<String> =
    LazyLock::new(|| document().to_pretty_json().expect("the OpenAPI document serializes"));

/// The OpenAPI 3.1 document of the `/api/v1` routes.
pub fn document() -> openapi::OpenApi {
    api(tower::layer::util::Identity::new()).into_openapi()
}

/// The OpenAPI 3.1 description of this API (this document).
#[utoipa::path(
    get,
    path = "/openapi.json",
    operation_id = "getOpenApiDocument",
    tag = "meta",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json", body = Object)),
)]
async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str())
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use super::*;

    /// The methods axum's `MethodRouter` has a field for.
    const METHODS: [&str; 9] = ["get", "head", "delete", "options", "patch", "post", "put", "trace", "connect"];

    /// (method, path) of every route `router` serves, read from its `Debug`
    /// form: axum has no public way to list routes. The form pairs route ids
    /// with a `MethodRouter` (each method `None` or a handler) and with a
    /// path; anything else fails the test rather than being skipped.
    fn routed(router: &Router<AppState>) -> BTreeSet<(String, String)> {
        let debug = format!("{router:?}");
        // The fallback router holds the fallbacks only, not routes.
        let (routes, _) = debug.split_once("fallback_router:").expect("axum's Router debug form has a fallback_router");
        let mut paths = HashMap::new();
        let mut methods = HashMap::new();
        for item in routes.split("RouteId(").skip(1) {
            let (id, rest) = item.split_once("): ").expect("RouteId(n): …");
            if let Some(quoted) = rest.strip_prefix('"') {
                paths.insert(id, quoted[..quoted.find('"').expect("closing quote")].to_owned());
            } else if rest.starts_with("MethodRouter(") {
                let set: Vec<&str> = METHODS
                    .into_iter()
                    .filter(|m| {
                        let field = format!(" {m}: ");
                        let at = rest.find(&field).unwrap_or_else(|| panic!("no `{m}` in {rest:.200}"));
                        !rest[at + field.len()..].starts_with("None")
                    })
                    .collect();
                methods.insert(id, set);
            } else {
                panic!("a route that is not a MethodRouter (nest_service?): {rest:.200}");
            }
        }
        assert_eq!(paths.len(), methods.len(), "every route id has a path and a MethodRouter: {paths:?}");
        let mut out = BTreeSet::new();
        for (id, path) in paths {
            for m in &methods[id] {
                out.insert((m.to_string(), path.clone()));
            }
        }
        out
    }

    /// (method, path) of every operation in the document.
    fn documented(doc: &openapi::OpenApi) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            let operations = [
                ("get", &item.get),
                ("put", &item.put),
                ("post", &item.post),
                ("delete", &item.delete),
                ("options", &item.options),
                ("head", &item.head),
                ("patch", &item.patch),
                ("trace", &item.trace),
            ];
            for (method, operation) in operations {
                if operation.is_some() {
                    out.insert((method.to_owned(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn the_document_describes_every_route_and_nothing_else() {
        let router = serve(api(tower::layer::util::Identity::new()));
        let routed = routed(&router);
        let documented = documented(&document());
        assert!(routed.len() > 40, "the routes were read: {routed:?}");
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routes missing from the OpenAPI document: {undocumented:?}; \
             documented operations with no route: {unrouted:?}"
        );
    }

    #[test]
    fn every_operation_but_the_document_needs_the_api_key() {
        let doc = document();
        let mut ids = BTreeSet::new();
        for (path, item) in &doc.paths.paths {
            for op in [&item.get, &item.put, &item.post, &item.delete, &item.patch].into_iter().flatten() {
                let id = op.operation_id.clone().unwrap_or_else(|| panic!("{path} has an operationId"));
                assert!(ids.insert(id.clone()), "operationId {id} is unique");
                assert!(op.tags.as_ref().is_some_and(|t| !t.is_empty()), "{id} has a tag");
                let security = serde_json::to_value(&op.security).unwrap();
                if path == "/openapi.json" {
                    assert_eq!(security, serde_json::json!([{}]), "the document is public");
                } else {
                    assert_eq!(security, serde_json::json!([{ "apiKey": [] }]), "{id} needs the API key");
                    assert!(op.responses.responses.contains_key("401"), "{id} documents 401");
                }
            }
        }
        let json: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap();
        assert_eq!(json["openapi"], "3.1.0");
        assert_eq!(json["components"]["securitySchemes"]["apiKey"]["scheme"], "bearer");
    }
}
