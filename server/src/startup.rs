//! Builds the application: connects storage, assembles the router, binds the
//! listener. `Application::build` reports the bound port so tests use port 0.

use std::future::Future;
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
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnFailure, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Settings;
use crate::db::Store;
use crate::error::ApiError;
use crate::mail::Mailer;
use crate::portal::ServerBackend;

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
    pub domains: Arc<crate::domains::DomainService>,
    /// Per-directory SCIM request log.
    pub scim_log: crate::scim::requests::RequestLog,
    /// OpenID provider discovery cache and HTTP client.
    pub oidc: Arc<crate::sso::oidc::OidcProviders>,
    /// The egress-checked client for fetches made on someone else's behalf.
    pub egress: crate::egress::Egress,
    /// Abuse limits (per process).
    pub limits: Arc<crate::limits::Limits>,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// A built, bound, not yet serving Portico.
pub struct Application {
    listener: TcpListener,
    router: Router,
    store: Store,
    port: u16,
    worker: Option<crate::events::delivery::Worker>,
    domains: Arc<crate::domains::DomainService>,
    domain_worker: bool,
    /// Writes the SCIM request log; ends after the router is dropped.
    scim_log_writer: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// Largest request body of a portal page or server function.
const MAX_SITE_BODY_BYTES: usize = 2 * 1024 * 1024;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

impl Application {
    /// Connects to the database (running migrations), builds the router and
    /// binds `settings.listen`.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let store = Store::connect(&settings.database_url, settings.database_max_connections).await?;
        Self::build_with_store(settings, store).await
    }

    /// As [`Application::build`] with an already connected store.
    pub async fn build_with_store(settings: Settings, store: Store) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(settings.listen).await.with_context(|| format!("Failed to bind {}", settings.listen))?;
        let port = listener.local_addr()?.port();
        let cipher = Arc::new(settings.cipher()?);
        let worker = if settings.webhooks.worker {
            Some(crate::events::delivery::Worker::new(
                store.clone(),
                settings.webhooks.clone(),
                cipher.clone(),
                &settings.outbound,
            )?)
        } else {
            None
        };
        let domains = Arc::new(crate::domains::DomainService::from_settings(&settings.domains)?);
        let domain_worker = settings.domains.worker;
        let (scim_log, scim_log_writer) = crate::scim::requests::RequestLog::new(store.clone());
        let router = router(settings, store.clone(), cipher, domains.clone(), scim_log)?;
        Ok(Self {
            listener,
            router,
            store,
            port,
            worker,
            domains,
            domain_worker,
            scim_log_writer: Box::pin(scim_log_writer),
        })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The store this application uses.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `signal` completes.
    pub async fn run_until(self, signal: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stopped = move |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let worker = self.worker.map(|w| tokio::spawn(w.run(stopped(stop_rx.clone()))));
        let domain_worker = self.domain_worker.then(|| {
            tokio::spawn(crate::domains::run_worker(self.store.clone(), self.domains.clone(), stopped(stop_rx.clone())))
        });
        let scim_log_writer = tokio::spawn(self.scim_log_writer);
        let certificates =
            tokio::spawn(crate::sso::run_certificate_worker(self.store.clone(), stopped(stop_rx.clone())));
        let service = self.router.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let serve = axum::serve(self.listener, service).with_graceful_shutdown(async move {
            signal.await;
            let _ = stop_tx.send(true);
        });
        serve.await?;
        // The router (every log handle) is gone: the writer flushes and ends.
        let _ = scim_log_writer.await;
        let _ = certificates.await;
        if let Some(worker) = worker {
            let _ = worker.await;
        }
        if let Some(worker) = domain_worker {
            let _ = worker.await;
        }
        self.store.close().await;
        Ok(())
    }
}

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
pub fn router(
    settings: Settings,
    store: Store,
    cipher: Arc<crate::crypto::Cipher>,
    domains: Arc<crate::domains::DomainService>,
    scim_log: crate::scim::requests::RequestLog,
) -> anyhow::Result<Router> {
    let leptos_options = leptos_options(&settings);
    let mailer = Mailer::from_settings(&settings.smtp)?.map(Arc::new);
    let frame_ancestors = HeaderValue::from_str(&crate::portal::frame_ancestors(&settings))
        .context("portal.embed_origins produce an invalid header")?;
    let forbid_framing = settings.portal.embed_origins.is_empty();
    let csp = Arc::new(crate::browser::CspPolicy { frame_ancestors: crate::portal::frame_ancestors(&settings) });
    let own_origin = Arc::new(crate::browser::OwnOrigin::of(&settings.public_url));
    let settings = Arc::new(settings);
    let egress = crate::egress::Egress::from_settings(&settings.outbound).map_err(|e| anyhow::anyhow!(e))?;
    let oidc = Arc::new(crate::sso::oidc::OidcProviders::new(egress.clone()));
    let limits = Arc::new(crate::limits::Limits::from_settings(&settings.limits));
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
        crate::browser::provide_leptos_nonce();
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
        .route("/portal/launch", get(crate::portal::launch::launch))
        .route("/readyz", get(readyz))
        .nest("/api/v1", crate::api::router(state.clone()))
        .nest("/scim/v2", crate::scim::router(state.clone()))
        .merge(crate::sso::flow::routes())
        .merge(crate::api::with_api_key(crate::sso::flow::token_routes(), state.clone()))
        .nest_service("/pkg", static_files)
        .merge(site)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(own_origin, crate::browser::refuse_cross_site))
        .layer(axum::middleware::from_fn_with_state(csp, crate::browser::content_security_policy))
        .layer(axum::middleware::from_fn_with_state(limits, crate::limits::client_addr))
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

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received, draining");
}
