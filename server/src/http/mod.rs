//! The HTTP layer: the shared state of every handler, the complete router
//! with its middleware, and the adapters (`api/`, the vendor REST API; the
//! SCIM, SSO and portal handlers move here as they are split from their
//! logic). See docs/architecture.md for the layering.

pub mod api;
pub mod browser;
pub mod error;
pub mod limits;
pub mod portal;
pub mod scim;
pub mod sso;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{FromRef, State};
use axum::http::{HeaderName, HeaderValue, Request};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Settings;
use crate::mail::Mailer;
use crate::portal::ServerBackend;
use crate::store::Store;
use error::ApiError;

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub leptos_options: LeptosOptions,
    /// `None` while SMTP is not configured.
    pub mailer: Option<Arc<Mailer>>,
    /// Encrypts secrets at rest.
    pub cipher: Arc<crate::crypto::Cipher>,
    /// Domain verification rules and the DNS resolver.
    pub domains: Arc<crate::services::domains::DomainService>,
    /// Per-directory SCIM request log.
    pub scim_log: crate::services::scim_log::RequestLog,
    /// OpenID provider discovery cache and HTTP client.
    pub oidc: Arc<crate::sso::oidc::OidcProviders>,
    /// The egress-checked client for fetches made on someone else's behalf.
    pub egress: crate::egress::Egress,
    /// Abuse limits (per process).
    pub limits: Arc<crate::http::limits::Limits>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// Largest request body of a portal page or server function.
const MAX_SITE_BODY_BYTES: usize = 2 * 1024 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

fn leptos_options(settings: &Settings) -> LeptosOptions {
    LeptosOptions::builder()
        // Trunk names the bundle after the frontend crate.
        .output_name("portico-frontend")
        .site_root(settings.site_root.to_string_lossy().into_owned())
        .site_pkg_dir("pkg")
        .site_addr(settings.listen)
        .build()
}

/// The complete HTTP surface.
pub(crate) fn router(
    settings: Settings,
    store: Store,
    cipher: Arc<crate::crypto::Cipher>,
    domains: Arc<crate::services::domains::DomainService>,
    scim_log: crate::services::scim_log::RequestLog,
) -> anyhow::Result<Router> {
    let leptos_options = leptos_options(&settings);
    let mailer = Mailer::from_settings(&settings.smtp)?.map(Arc::new);
    let frame_ancestors = HeaderValue::from_str(&crate::portal::frame_ancestors(&settings))
        .context("portal.embed_origins produce an invalid header")?;
    let forbid_framing = settings.portal.embed_origins.is_empty();
    let csp = Arc::new(crate::http::browser::CspPolicy { frame_ancestors: crate::portal::frame_ancestors(&settings) });
    let own_origin = Arc::new(crate::http::browser::OwnOrigin::of(&settings.public_url));
    let settings = Arc::new(settings);
    let egress = crate::egress::Egress::from_settings(&settings.outbound).map_err(|e| anyhow::anyhow!(e))?;
    let oidc = Arc::new(crate::sso::oidc::OidcProviders::new(egress.clone()));
    let limits = Arc::new(crate::http::limits::Limits::from_settings(&settings.limits));
    let state = AppState {
        store: store.clone(),
        settings: settings.clone(),
        leptos_options: leptos_options.clone(),
        mailer,
        cipher,
        domains: domains.clone(),
        scim_log,
        oidc: oidc.clone(),
        egress: egress.clone(),
        limits: limits.clone(),
    };
    let backend = app::backend::Backend(Arc::new(ServerBackend::new(
        store,
        settings,
        domains,
        state.cipher.clone(),
        oidc,
        egress,
    )));
    let routes = generate_route_list(app::App);
    let context = move || {
        crate::http::browser::provide_leptos_nonce();
        provide_context(backend.clone())
    };

    let pkg_dir = std::path::Path::new(&*leptos_options.site_root).join(&*leptos_options.site_pkg_dir);
    let static_files = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .service(tower_http::services::ServeDir::new(pkg_dir).precompressed_gzip().precompressed_br());

    // The portal's pages and server functions: bodies are bounded here too
    // (the API and SCIM bound theirs with their own error formats).
    let site = Router::new()
        .leptos_routes_with_context(&state, routes, context.clone(), {
            let options = leptos_options.clone();
            move || app::shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(context, app::shell))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_SITE_BODY_BYTES));

    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/portal/launch", get(portal::launch))
        .route("/readyz", get(readyz))
        .nest("/api/v1", crate::http::api::router(state.clone()))
        .nest("/scim/v2", scim::router(state.clone()))
        .merge(sso::routes())
        .merge(crate::http::api::with_api_key(sso::token_routes(), state.clone()))
        .nest_service("/pkg", static_files)
        .merge(site)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(own_origin, crate::http::browser::refuse_cross_site))
        .layer(axum::middleware::from_fn_with_state(csp, crate::http::browser::content_security_policy))
        .layer(axum::middleware::from_fn_with_state(limits, crate::http::limits::client_addr))
        .layer(
            tower::ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(|req: &Request<Body>| {
                            let request_id =
                                req.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
                            // Path only: query strings may carry tokens.
                            tracing::info_span!(
                                "request",
                                method = %req.method(),
                                path = %req.uri().path(),
                                request_id = %request_id,
                                api_key_id = tracing::field::Empty,
                            )
                        })
                        .on_request(())
                        .on_response(DefaultOnResponse::new().level(Level::INFO))
                        .on_failure(DefaultOnFailure::new().level(Level::WARN)),
                )
                .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
                .layer(SetResponseHeaderLayer::if_not_present(
                    HeaderName::from_static("x-content-type-options"),
                    HeaderValue::from_static("nosniff"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    HeaderName::from_static("referrer-policy"),
                    HeaderValue::from_static("no-referrer"),
                ))
                // Only the vendor's configured origins may frame the portal.
                .layer(SetResponseHeaderLayer::if_not_present(
                    HeaderName::from_static("content-security-policy"),
                    frame_ancestors,
                ))
                // Legacy browsers without frame-ancestors support.
                .layer(tower::util::option_layer(forbid_framing.then(|| {
                    SetResponseHeaderLayer::if_not_present(
                        HeaderName::from_static("x-frame-options"),
                        HeaderValue::from_static("DENY"),
                    )
                }))),
        );
    Ok(router)
}

/// Liveness: the process serves HTTP.
async fn healthz() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: the database answers within two seconds.
async fn readyz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(serde_json::json!({ "status": "ready" }))),
        Ok(Err(e)) => Err(ApiError::Unavailable(e)),
        Err(_) => Err(ApiError::Unavailable(anyhow::anyhow!("database ping timed out"))),
    }
}
